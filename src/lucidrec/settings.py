"""Where lucidrec reads data and keeps caches.

Data directory, in order of precedence:
1. an explicit ``--data-dir`` / ``data_dir=`` argument;
2. the ``LUCIDREC_DATA_DIR`` environment variable;
3. ``../shared/data`` relative to the working directory, when it exists (the project's machines);
4. ``shared/data`` next to a source checkout of lucidrec, when it exists;
5. a per-user cache directory (``$XDG_CACHE_HOME/lucidrec/data``), where downloads go.
"""

from __future__ import annotations

import os
from pathlib import Path

DATA_DIR_ENV = "LUCIDREC_DATA_DIR"
CACHE_DIR_ENV = "LUCIDREC_CACHE_DIR"


def user_cache_dir() -> Path:
    """Root of lucidrec's per-user caches (vectors, LLM answers, downloads)."""
    if os.environ.get(CACHE_DIR_ENV):
        return Path(os.environ[CACHE_DIR_ENV]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "lucidrec"


def default_data_dir() -> Path:
    if os.environ.get(DATA_DIR_ENV):
        return Path(os.environ[DATA_DIR_ENV]).expanduser()
    candidates = [
        Path.cwd() / ".." / "shared" / "data",
        Path(__file__).resolve().parents[3] / "shared" / "data",  # src/lucidrec -> checkout/.. sibling
    ]
    for candidate in candidates:
        if candidate.is_dir():
            return candidate.resolve()
    return user_cache_dir() / "data"


def resolve_data_dir(data_dir: str | os.PathLike | None = None) -> Path:
    return Path(data_dir).expanduser() if data_dir else default_data_dir()
