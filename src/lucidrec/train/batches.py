"""Training examples from the training part of a split.

Causal backbones: for each user, input = the last ``max_len`` items before the final training
item, target at each position = the next item (the classic SASRec setup, one row per user).
Cloze backbones: the last ``max_len`` training items, a share of positions replaced by the mask
token (the last position is masked more often, as the next-item task needs), targets = the
original items at masked positions.
"""

from __future__ import annotations

import numpy as np
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.models.backbone import left_pad


def trainable_users(train: Ragged, objective: str) -> np.ndarray:
    need = 2 if objective == "causal" else 1
    return np.flatnonzero(train.lengths() >= need)


def causal_batch(train: Ragged, users: np.ndarray, max_len: int) -> tuple[torch.Tensor, torch.Tensor]:
    rows = train.take(users)
    lengths = rows.lengths()
    inputs = rows.truncate(lengths - 1)
    # Targets are the same rows shifted by one: drop each row's first item.
    keep = rows.positions() > 0
    targets = Ragged.from_lengths(rows.values[keep], lengths - 1)
    return left_pad(inputs, max_len), left_pad(targets, max_len)


def cloze_batch(train: Ragged, users: np.ndarray, max_len: int, mask_prob: float, mask_token: int,
                generator: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = left_pad(train.take(users), max_len)
    real = seqs != 0
    chosen = torch.from_numpy(generator.random(seqs.shape) < mask_prob) & real
    # Guarantee at least one masked position per row: the most recent item, as at inference.
    chosen[:, -1] |= real[:, -1]
    inputs = seqs.masked_fill(chosen, mask_token)
    targets = seqs.masked_fill(~chosen, 0)
    return inputs, targets
