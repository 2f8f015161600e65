"""Fixtures of the LANE tests: a tiny titled dataset and a small deterministic sentence encoder."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

PREFERENCES = {f"Preference{k + 1}": text for k, text in enumerate(
    ["gritty crime dramas", "light romantic comedies", "classic science fiction", "animated family films",
     "documentaries about music"])}


class HashEncoder:
    """A stand-in sentence encoder: unit vectors from a hash of each text (same text, same vector)."""

    identity = "hash-encoder"

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.encoded: list[str] = []

    def encode(self, texts, show_progress=False):
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


@pytest.fixture
def hash_encoder():
    return HashEncoder()


@pytest.fixture
def titled_films(tmp_path):
    """12 users x 8 films (of 15); every title says which film it is; m14 has no title; user u11 has only
    2 interactions (an empty training part under leave-one-out)."""
    folder = tmp_path / "data" / "titled-films"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    rows = [(f"u{u}", f"m{i}", t) for u in range(11) for t, i in enumerate(rng.choice(15, size=8, replace=False))]
    rows += [("u11", "m0", 0), ("u11", "m1", 1)]
    pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp"]).to_parquet(folder / "interactions.parquet")
    titles = [f"Film title number {i}" for i in range(14)] + [None]
    pd.DataFrame({"item_id": [f"m{i}" for i in range(15)], "title": titles}).to_parquet(folder / "items.parquet")
    return tmp_path / "data"


def fixed_answer() -> str:
    return json.dumps(PREFERENCES)
