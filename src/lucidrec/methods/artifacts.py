"""A content-addressed artifact cache: ``<root>/<kind>/<key>/`` folders with a ``provenance.json``.

The key is a hash of everything that decides the content (inputs' hashes and settings), so equal
requests share one folder and any change gets a new one. ``provenance.json`` is written last and
atomically: its presence marks a complete artifact. An advisory file lock per key keeps two
processes from building the same artifact at once (the second waits, then reuses it).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
from pathlib import Path

from lucidrec import __version__
from lucidrec.files import read_json, write_json_atomic
from lucidrec.locks import hold
from lucidrec.settings import user_cache_dir

PROVENANCE = "provenance.json"


def artifacts_root(configured: str | None) -> Path:
    return Path(configured).expanduser() if configured else user_cache_dir() / "artifacts"


def content_key(payload) -> str:
    """A short stable hash of a JSON-serialisable payload (key order does not matter)."""
    text = json.dumps(payload, sort_keys=True, default=str, ensure_ascii=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:16]


def artifact_dir(root: Path, kind: str, key: str) -> Path:
    return Path(root) / kind / key


def is_complete(folder: Path) -> bool:
    return (Path(folder) / PROVENANCE).is_file()


def read_provenance(folder: Path) -> dict:
    return read_json(Path(folder) / PROVENANCE)


def write_provenance(folder: Path, payload: dict) -> None:
    write_json_atomic(Path(folder) / PROVENANCE, {**payload, "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                                                  "lucidrec_version": __version__})


@contextlib.contextmanager
def locked(folder: Path):
    """Hold an exclusive lock on ``<folder>.lock`` (blocks while another process builds the same key)."""
    folder = Path(folder)
    with hold(folder, wait=True, holder=f"building {folder.parent.name} {folder.name}",
              lock_file=folder.with_name(folder.name + ".lock")):
        yield
