"""Training examples from the training part of a split.

Causal backbones: for each user, input = the last ``max_len`` items before the final training
item, target at each position = the next item (the classic SASRec setup, one row per user).
Cloze backbones: the last ``max_len`` training items, a share of positions replaced by the mask
token (the last position is masked more often, as the next-item task needs), targets = the
original items at masked positions.

``window="random"`` replaces "the last" by a window ending at a random point of a history longer than
the window, drawn anew each epoch: with the latest window only, a user's items older than
``max_len`` are never trained on (on ml-1m with ``max_len`` 50 that is most interactions).
"""

from __future__ import annotations

import numpy as np
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.models.backbone import left_pad


def trainable_users(train: Ragged, objective: str) -> np.ndarray:
    need = 2 if objective == "causal" else 1
    return np.flatnonzero(train.lengths() >= need)


def crop_to_window(rows: Ragged, size: int, window: str, generator: np.random.Generator | None) -> Ragged:
    """Rows cut to end where the window ends: their last item ("latest"), or a uniform random end at
    which a full window of ``size`` items still fits ("random"); shorter rows are kept whole."""
    if window == "latest":
        return rows
    if window != "random":
        raise ValueError(f"unknown history window {window!r}; valid: latest, random")
    if generator is None:
        raise ValueError("window='random' needs a generator (the epoch's seeded numpy generator)")
    lengths = rows.lengths()
    # Ends in [size, length]: integers(low, high) excludes high, hence + 1.
    ends = generator.integers(np.minimum(size, lengths), lengths + 1)
    return rows.truncate(ends)


def causal_batch(train: Ragged, users: np.ndarray, max_len: int, window: str = "latest",
                 generator: np.random.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    # max_len inputs need max_len + 1 items (the targets are the inputs shifted by one).
    rows = crop_to_window(train.take(users), max_len + 1, window, generator)
    lengths = rows.lengths()
    inputs = rows.truncate(lengths - 1)
    # Targets are the same rows shifted by one: drop each row's first item.
    keep = rows.positions() > 0
    targets = Ragged.from_lengths(rows.values[keep], lengths - 1)
    return left_pad(inputs, max_len), left_pad(targets, max_len)


def training_batch(model, train: Ragged, users: np.ndarray, window: str,
                   generator: np.random.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of ``users`` for ``model``'s objective: next items (causal) or masked items (cloze)."""
    if model.objective == "causal":
        return causal_batch(train, users, model.config.max_len, window, generator)
    return cloze_batch(train, users, model.config.max_len, model.config.mask_prob, model.mask_token, generator, window)


def cloze_batch(train: Ragged, users: np.ndarray, max_len: int, mask_prob: float, mask_token: int,
                generator: np.random.Generator, window: str = "latest") -> tuple[torch.Tensor, torch.Tensor]:
    seqs = left_pad(crop_to_window(train.take(users), max_len, window, generator), max_len)
    real = seqs != 0
    chosen = torch.from_numpy(generator.random(seqs.shape) < mask_prob) & real
    # Guarantee at least one masked position per row: the most recent item, as at inference.
    chosen[:, -1] |= real[:, -1]
    inputs = seqs.masked_fill(chosen, mask_token)
    targets = seqs.masked_fill(~chosen, 0)
    return inputs, targets
