"""Top-k selection of the serving path: the evaluator's tie rule (higher score, then smaller index)."""

import numpy as np
import torch

from lucidrec.serve.runs import top_k, top_k_batch


def reference(row: np.ndarray, k: int) -> list[int]:
    finite = [i for i in range(len(row)) if np.isfinite(row[i])]
    return sorted(finite, key=lambda i: (-row[i], i))[:k]


def test_batched_top_k_follows_the_tie_rule_and_skips_masked_items():
    rng = np.random.default_rng(0)
    rows = rng.integers(0, 5, size=(40, 30)).astype(np.float32)  # many ties, some straddling the cut
    rows[rng.random(rows.shape) < 0.3] = -np.inf
    rows[3, :] = -np.inf  # nothing left to recommend
    rows[4, 5:] = -np.inf  # fewer than k items left
    ks = [int(k) for k in rng.integers(1, 12, size=40)]
    answers = top_k_batch(torch.as_tensor(rows), ks)
    for row, k, answer in zip(rows, ks, answers):
        assert [i for i, _ in answer] == reference(row, k)
        assert [s for _, s in answer] == [float(row[i]) for i in reference(row, k)]
        assert [i for i, _ in top_k(torch.as_tensor(row), k)] == reference(row, k)
