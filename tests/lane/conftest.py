"""Fixtures of the LANE tests: a tiny titled dataset and a small deterministic sentence encoder."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from lucidrec.data.pipeline import load_split
from lucidrec.methods.lane import LaneRecipe
from lucidrec.methods.recipe import RecipeContext
from lucidrec.train.run import build_config, train_run

from lane_helpers import HashEncoder, fixed_answer


@pytest.fixture
def hash_encoder():
    return HashEncoder()


@pytest.fixture
def titled_films(tmp_path):
    """12 users x 8 films (of 15); every title says which film it is; m14 has no title; user u11 has only
    2 interactions (not evaluated: all of them are training)."""
    folder = tmp_path / "data" / "titled-films"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"m{i}", t) for u in range(11) for t, i in enumerate(rng.choice(15, size=8, replace=False))]
    rows += [("u11", "m0", 0), ("u11", "m1", 1)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_parquet(folder / "interactions.parquet")
    titles = [f"Film title number {i}" for i in range(14)] + [None]
    pd.DataFrame({"item_id": [f"m{i}" for i in range(15)], "title": titles}).to_parquet(folder / "items.parquet")
    return tmp_path / "data"


@pytest.fixture
def lane_run(tmp_path, titled_films, hash_encoder):
    config = build_config({
        "data": {"dataset": "titled-films", "data_dir": str(titled_films)},
        "model": {"name": "sasrec", "hidden": 16, "max_len": 8},
        "embedding": {"name": "lane", "llm": {"backend": "mock", "mode": "fixed", "answer": fixed_answer()},
                      "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 2, "threads": 1, "progress": False},
    })
    run = tmp_path / "run"
    data, split = load_split(config.data)
    LaneRecipe(encoder=hash_encoder).prepare(RecipeContext(config, data, split, run))
    assert train_run(config, run)["status"] == "done"
    return run
