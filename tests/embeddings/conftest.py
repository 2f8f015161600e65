"""Shared fixtures of the item-embedding tests."""

import numpy as np
import pandas as pd
import pytest


@pytest.fixture
def tiny_movies(tmp_path):
    folder = tmp_path / "data" / "tiny-films"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"m{i}", t) for u in range(12) for t, i in enumerate(rng.choice(15, size=8, replace=False))]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_parquet(folder / "interactions.parquet")
    titles = [f"Film number {i}" for i in range(14)] + [None]  # m14 has no text
    pd.DataFrame({"item_id": [f"m{i}" for i in range(15)], "title": titles}).to_parquet(folder / "items.parquet")
    return tmp_path / "data"
