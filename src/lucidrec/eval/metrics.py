"""Ranking metrics as plain functions of the target's 0-based rank (one held-out item per user).

With a single relevant item, Recall@K and HR@K are the same number: 1 if the target is in the top
K. NDCG@K is 1/log2(rank + 2) inside the top K (the ideal DCG is 1), MRR is 1/(rank + 1) over the
full list (no cut-off).
"""

from __future__ import annotations

import numpy as np


def recall_at(ranks: np.ndarray, k: int) -> np.ndarray:
    return (ranks < k).astype(np.float64)


def ndcg_at(ranks: np.ndarray, k: int) -> np.ndarray:
    ranks = np.asarray(ranks)
    return np.where(ranks < k, 1.0 / np.log2(ranks + 2.0), 0.0)


def mrr(ranks: np.ndarray) -> np.ndarray:
    return 1.0 / (np.asarray(ranks, dtype=np.float64) + 1.0)


def per_user_metrics(ranks: np.ndarray, ks=(5, 10, 20)) -> dict[str, np.ndarray]:
    """Metric name -> per-user values. ``hr@K`` is kept next to ``recall@K`` for readers of both literatures."""
    out: dict[str, np.ndarray] = {}
    for k in ks:
        out[f"recall@{k}"] = recall_at(ranks, k)
        out[f"hr@{k}"] = out[f"recall@{k}"]
        out[f"ndcg@{k}"] = ndcg_at(ranks, k)
    out["mrr"] = mrr(ranks)
    return out
