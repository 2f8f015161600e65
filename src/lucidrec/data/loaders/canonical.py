"""The canonical layout: ``interactions.parquet`` + ``items.parquet`` (see shared/data/README.md)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.errors import DataFormatError

INTERACTIONS_FILE = "interactions.parquet"
ITEMS_FILE = "items.parquet"


def detect(folder: Path) -> bool:
    return (folder / INTERACTIONS_FILE).is_file()


def load(folder: Path, name: str) -> Dataset:
    path = folder / INTERACTIONS_FILE
    try:
        interactions = pd.read_parquet(path)
    except Exception as exc:  # pyarrow raises several unrelated types for broken files
        raise DataFormatError(path, f"cannot read parquet: {exc}") from exc
    items_path = folder / ITEMS_FILE
    notes: list[str] = []
    if items_path.is_file():
        try:
            frame = pd.read_parquet(items_path)
        except Exception as exc:  # pyarrow raises several unrelated types for broken files
            raise DataFormatError(items_path, f"cannot read parquet: {exc}") from exc
        try:
            items = ItemCatalog(frame)
        except DataFormatError as exc:
            raise DataFormatError(items_path, str(exc).split(": ", 1)[-1], field=exc.field) from exc
    else:
        items = ItemCatalog.empty()
        notes.append(f"no {ITEMS_FILE} in {folder}: the items have no text (methods that read item text have none)")
    return Dataset(name=name, interactions=interactions, items=items, source=str(path), notes=notes)


def save(dataset: Dataset, folder: Path) -> Path:
    """Write a dataset in the canonical layout (what ``lucidrec data convert`` and downloads produce)."""
    folder.mkdir(parents=True, exist_ok=True)
    dataset.interactions.to_parquet(folder / INTERACTIONS_FILE, index=False)
    dataset.items.frame.reset_index().to_parquet(folder / ITEMS_FILE, index=False)
    return folder
