"""A learnable synthetic dataset: every user walks a cycle of items, so the next item is predictable."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.loaders.canonical import save


def cyclic_dataset(n_users: int = 120, n_items: int = 30, length: int = 12, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    rows = []
    for user in range(n_users):
        start = rng.integers(0, n_items)
        step = 1 if user % 2 == 0 else 2
        for pos in range(length):
            rows.append((f"u{user}", f"i{(start + step * pos) % n_items}", pos, 1000 * user + pos))
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "seq_pos", "timestamp"])
    items = ItemCatalog(pd.DataFrame({"item_id": [f"i{i}" for i in range(n_items)],
                                      "title": [f"Item number {i}" for i in range(n_items)]}))
    return Dataset("cyclic", frame, items, source="<synthetic>")


def write_cyclic(root: Path, name: str = "cyclic", **kwargs) -> Path:
    return save(cyclic_dataset(**kwargs), Path(root) / name)
