"""Official download locations, with checksums, for users who have internet.

Nothing here runs at import or during tests: ``lucidrec data download NAME`` calls
:func:`download`, which fetches the archive(s) into ``<data-dir>/<NAME>/raw/``, verifies them and
unpacks them; the loaders then read the official format from ``raw/``.

GroupLens publishes an MD5 per archive (fixed for the frozen releases; for the moving
``ml-latest-small`` it is fetched from the ``.md5`` file next to the archive). The McAuley lab
publishes none: the SHA-256 of the first download is recorded in ``raw/CHECKSUMS`` and every
later download or use is verified against it (trust on first use).
"""

from __future__ import annotations

import hashlib
import shutil
import urllib.request
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

from lucidrec.errors import LucidrecError, UnknownNameError

GROUPLENS = "https://files.grouplens.org/datasets/movielens"
AMAZON_2014 = "http://snap.stanford.edu/data/amazon/productGraph/categoryFiles"
AMAZON_2018 = "https://datarepo.eng.ucsd.edu/mcauley_group/data/amazon_v2"


@dataclass(frozen=True)
class RemoteFile:
    url: str
    md5: str | None = None  # None: verified by trust on first use
    md5_url: str | None = None  # where the publisher keeps the current checksum


@dataclass(frozen=True)
class OfficialDataset:
    name: str
    files: tuple[RemoteFile, ...]
    description: str
    terms: str
    unpack_subfolder: str | None = None  # zip archives unpack into a folder of this name
    aliases: tuple[str, ...] = field(default_factory=tuple)


def _amazon2014(name: str, category: str) -> OfficialDataset:
    return OfficialDataset(
        name,
        (RemoteFile(f"{AMAZON_2014}/reviews_{category}_5.json.gz"), RemoteFile(f"{AMAZON_2014}/meta_{category}.json.gz")),
        f"Amazon 2014 '{category}' 5-core reviews with product metadata (McAuley et al.)",
        "McAuley lab research-use terms",
    )


def _amazon2018(name: str, category: str) -> OfficialDataset:
    return OfficialDataset(
        name,
        (
            RemoteFile(f"{AMAZON_2018}/categoryFilesSmall/{category}_5.json.gz"),
            RemoteFile(f"{AMAZON_2018}/metaFiles2/meta_{category}.json.gz"),
        ),
        f"Amazon 2018 '{category}' 5-core reviews with product metadata (Ni, Li, McAuley)",
        "McAuley lab research-use terms",
    )


OFFICIAL_DATASETS: dict[str, OfficialDataset] = {
    d.name: d
    for d in (
        OfficialDataset(
            "ml-100k", (RemoteFile(f"{GROUPLENS}/ml-100k.zip", md5="0e33842e24a9c977be4e0107933c0723"),),
            "MovieLens 100K (943 users, 1,682 movies)", "GroupLens research-use terms", unpack_subfolder="ml-100k",
        ),
        OfficialDataset(
            "ml-1m", (RemoteFile(f"{GROUPLENS}/ml-1m.zip", md5="c4d9eecfca2ab87c1945afe126590906"),),
            "MovieLens 1M (6,040 users, 3,706 rated movies)", "GroupLens research-use terms", unpack_subfolder="ml-1m",
        ),
        OfficialDataset(
            "ml-latest-small",
            (RemoteFile(f"{GROUPLENS}/ml-latest-small.zip", md5_url=f"{GROUPLENS}/ml-latest-small.zip.md5"),),
            "MovieLens latest small (changes over time)", "GroupLens research-use terms",
            unpack_subfolder="ml-latest-small",
        ),
        _amazon2014("amazon-beauty", "Beauty"),
        _amazon2014("amazon-sports", "Sports_and_Outdoors"),
        _amazon2014("amazon-toys", "Toys_and_Games"),
        _amazon2014("amazon-clothing", "Clothing_Shoes_and_Jewelry"),
        _amazon2014("amazon-games", "Video_Games"),
        _amazon2014("amazon-movies", "Movies_and_TV"),
        _amazon2018("amazon-scientific", "Industrial_and_Scientific"),
        _amazon2018("amazon-fashion", "AMAZON_FASHION"),
    )
}


class DownloadError(LucidrecError):
    pass


def official(name: str) -> OfficialDataset:
    if name not in OFFICIAL_DATASETS:
        raise UnknownNameError("official dataset", name, list(OFFICIAL_DATASETS))
    return OFFICIAL_DATASETS[name]


def file_digest(path: Path, algorithm: str) -> str:
    digest = hashlib.new(algorithm)
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verify(path: Path, remote: RemoteFile, expected_md5: str | None, ledger: Path) -> None:
    """Check ``path`` against the published MD5, or against the SHA-256 recorded at first download."""
    if expected_md5:
        actual = file_digest(path, "md5")
        if actual != expected_md5:
            raise DownloadError(f"{path}: MD5 {actual} does not match the published {expected_md5} ({remote.url})")
        return
    recorded = {}
    if ledger.is_file():
        recorded = dict(line.split("  ", 1)[::-1] for line in ledger.read_text().splitlines() if "  " in line)
    actual = file_digest(path, "sha256")
    if path.name in recorded and recorded[path.name] != actual:
        raise DownloadError(f"{path}: SHA-256 {actual} differs from the one recorded at first download ({recorded[path.name]})")
    if path.name not in recorded:
        with open(ledger, "a") as handle:
            handle.write(f"{actual}  {path.name}\n")


def download(name: str, data_dir: Path, fetch=urllib.request.urlretrieve) -> Path:
    """Fetch, verify and unpack an official dataset into ``data_dir/name/raw``; return that folder.

    ``fetch(url, destination)`` is injectable so the logic can be tested without a network.
    """
    spec = official(name)
    raw = Path(data_dir) / name / "raw"
    raw.mkdir(parents=True, exist_ok=True)
    for remote in spec.files:
        target = raw / remote.url.rsplit("/", 1)[-1]
        if not target.is_file():
            partial = target.with_suffix(target.suffix + ".part")
            try:
                fetch(remote.url, str(partial))
            except OSError as exc:
                raise DownloadError(f"cannot download {remote.url}: {exc}") from exc
            partial.replace(target)
        expected = remote.md5
        if expected is None and remote.md5_url:
            md5_file = raw / (target.name + ".md5")
            if not md5_file.is_file():
                fetch(remote.md5_url, str(md5_file))
            expected = md5_file.read_text().split()[0]
        verify(target, remote, expected, raw / "CHECKSUMS")
        if target.suffix == ".zip":
            with zipfile.ZipFile(target) as archive:
                archive.extractall(raw)
            inner = raw / (spec.unpack_subfolder or "")
            if spec.unpack_subfolder and inner.is_dir():
                for child in inner.iterdir():
                    destination = raw / child.name
                    if not destination.exists():
                        shutil.move(str(child), destination)
                shutil.rmtree(inner, ignore_errors=True)
    return raw
