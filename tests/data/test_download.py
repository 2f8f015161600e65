import hashlib
import io
import zipfile

import pytest

from lucidrec.data import load_dataset
from lucidrec.data.download import OFFICIAL_DATASETS, DownloadError, RemoteFile, download, verify


def _zip_bytes():
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("ml-100k/u.data", "1\t10\t5\t100\n1\t11\t4\t200\n2\t10\t3\t150\n")
        archive.writestr("ml-100k/u.item", "10|Ten (1990)|01-01-1990||url|" + "|".join(["0"] * 19) + "\n")
    return buffer.getvalue()


def test_download_verifies_unpacks_and_loads(tmp_path, monkeypatch):
    payload = _zip_bytes()
    spec = OFFICIAL_DATASETS["ml-100k"]
    fake = spec.__class__(spec.name, (RemoteFile(spec.files[0].url, md5=hashlib.md5(payload).hexdigest()),),
                          spec.description, spec.terms, spec.unpack_subfolder)
    monkeypatch.setitem(OFFICIAL_DATASETS, "ml-100k", fake)
    calls = []

    def fetch(url, destination):
        calls.append(url)
        with open(destination, "wb") as handle:
            handle.write(payload)

    raw = download("ml-100k", tmp_path, fetch=fetch)
    assert calls == ["https://files.grouplens.org/datasets/movielens/ml-100k.zip"]
    assert (raw / "u.data").is_file()
    dataset = load_dataset("ml-100k", tmp_path)
    assert len(dataset.interactions) == 3 and dataset.items.title("10") == "Ten (1990)"
    download("ml-100k", tmp_path, fetch=fetch)  # already there: no second fetch
    assert len(calls) == 1


def test_published_checksum_mismatch_is_refused(tmp_path):
    path = tmp_path / "file.zip"
    path.write_bytes(b"tampered")
    with pytest.raises(DownloadError, match="does not match the published"):
        verify(path, RemoteFile("u", md5="0" * 32), "0" * 32, tmp_path / "CHECKSUMS")


def test_unpublished_checksum_is_recorded_then_enforced(tmp_path):
    path = tmp_path / "reviews.json.gz"
    path.write_bytes(b"first")
    ledger = tmp_path / "CHECKSUMS"
    verify(path, RemoteFile("u"), None, ledger)
    assert hashlib.sha256(b"first").hexdigest() in ledger.read_text()
    verify(path, RemoteFile("u"), None, ledger)  # same file again: fine
    path.write_bytes(b"changed")
    with pytest.raises(DownloadError, match="differs from the one recorded"):
        verify(path, RemoteFile("u"), None, ledger)


def test_official_sets_have_urls():
    assert OFFICIAL_DATASETS["ml-1m"].files[0].md5 == "c4d9eecfca2ab87c1945afe126590906"
    assert all(f.url.startswith("http") for d in OFFICIAL_DATASETS.values() for f in d.files)
