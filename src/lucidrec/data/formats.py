"""Which loader reads a folder: an explicit table of formats, tried in order."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from lucidrec.data.dataset import Dataset
from lucidrec.data.loaders import amazon, canonical, movielens


@dataclass(frozen=True)
class Format:
    name: str
    detect: Callable[[Path], bool]
    load: Callable[..., Dataset]
    reads_bad_lines: bool  # whether ``on_bad_lines`` applies (text formats)


FORMATS: tuple[Format, ...] = (
    Format("canonical", canonical.detect, canonical.load, False),
    Format("movielens-100k", movielens.detect_100k, movielens.load_100k, True),
    Format("movielens-1m", movielens.detect_1m, movielens.load_1m, True),
    Format("movielens-csv", movielens.detect_csv, movielens.load_csv, True),
    Format("amazon", amazon.detect, amazon.load, True),
)


def detect_format(folder: Path) -> tuple[Format, Path] | None:
    """The first format found in ``folder`` itself, else in ``folder/raw``."""
    for candidate in (folder, folder / "raw"):
        if not candidate.is_dir():
            continue
        for fmt in FORMATS:
            if fmt.detect(candidate):
                return fmt, candidate
    return None
