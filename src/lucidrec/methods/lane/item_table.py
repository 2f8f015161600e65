"""LANE's ``item_table`` stage: every item's title encoded by the sentence encoder (ids are kept).

Items without a title get a random unit vector (seeded by the data hash, so a rebuild gives the same
table), counted as ``items_without_title``: encoding a placeholder like 'item 17' would put all of
them at one point of the text space.
"""

from __future__ import annotations

import numpy as np

from lucidrec.methods.lane.extraction import item_titles


def encode_titles(data, encoder) -> tuple[np.ndarray, np.ndarray, dict]:
    """(n_items+1, d) table (row 0 zero), the has-title mask, and counts."""
    titles = item_titles(data)
    has_title = np.array([bool(t.strip()) for t in titles])
    has_title[0] = False
    rows = np.flatnonzero(has_title)
    vectors = encoder.encode([titles[i] for i in rows], show_progress=False) if len(rows) else None
    dim = vectors.shape[1] if vectors is not None else encoder.dim
    table = np.zeros((len(titles), dim), np.float32)
    if vectors is not None:
        table[rows] = vectors
    without = np.flatnonzero(~has_title[1:]) + 1
    rng = np.random.default_rng(int(data.data_hash[:8], 16) if data.data_hash else 0)
    random = rng.standard_normal((len(without), dim)).astype(np.float32)
    table[without] = random / np.linalg.norm(random, axis=1, keepdims=True).clip(min=1e-12)
    info = {"items": int(data.n_items), "items_with_title": int(len(rows)), "items_without_title": int(len(without)),
            "fallback": "random unit vector", "encoder": getattr(encoder, "identity", str(encoder)), "dim": int(dim)}
    return table, has_title, info
