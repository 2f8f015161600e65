"""Shared fixtures: a tiny hand-made dataset, and the real datasets under the data directory."""

from __future__ import annotations

import os
import sys

import numpy as np
import pandas as pd
import pytest

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.settings import default_data_dir

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def one_torch_thread():
    """Run torch single-threaded in tests (LUCIDREC_TEST_TORCH_THREADS overrides).

    On a shared 2-core machine two threads compete with any other busy process and become several
    times slower than one; correctness does not depend on it. torch is not imported here if the test
    did not import it (some tests check that importing lucidrec.lm stays light).
    """
    torch = sys.modules.get("torch")
    if torch is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(int(os.environ.get("LUCIDREC_TEST_TORCH_THREADS", "1")))
    yield
    torch.set_num_threads(before)


@pytest.fixture
def tiny_dataset() -> Dataset:
    """Four users, five items, timestamps increasing with position; user d has two interactions."""
    rows = [
        ("a", "i1", 10), ("a", "i2", 20), ("a", "i3", 30), ("a", "i4", 40),
        ("b", "i2", 11), ("b", "i3", 21), ("b", "i5", 31),
        ("c", "i1", 12), ("c", "i3", 22), ("c", "i2", 32), ("c", "i5", 42), ("c", "i4", 52),
        ("d", "i1", 13), ("d", "i2", 23),
    ]
    frame = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"])
    items = ItemCatalog(pd.DataFrame({"item_id": ["i1", "i2", "i3", "i4", "i5"],
                                      "title": ["One", "Two", None, "Four", "Five"]}))
    return Dataset("tiny", frame, items, source="<tiny>")


@pytest.fixture(scope="session")
def data_dir():
    root = default_data_dir()
    if not (root / "ml-100k").is_dir():
        pytest.skip(f"real datasets not found under {root} (set LUCIDREC_DATA_DIR)")
    return root


@pytest.fixture
def rng():
    return np.random.default_rng(0)
