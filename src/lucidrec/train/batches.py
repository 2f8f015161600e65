"""Training examples from the training part of a split.

Causal backbones: for each user, input = the last ``max_len`` items before the final training
item, target at each position = the next item (the classic SASRec setup, one row per user).
Cloze backbones: the last ``max_len`` training items, a share of positions replaced by the mask
token (the last position is masked more often, as the next-item task needs), targets = the
original items at masked positions.

Every batch is cut to its longest row (``to_longest``; ``False`` pads to ``max_len`` as before, for
comparisons): the backbones give the same states either way. ``length_bucketing`` (see
:func:`epoch_batches`) puts rows of similar length together so there is less padding left to cut.

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


def history_widths(train: Ragged, users: np.ndarray, model) -> np.ndarray:
    """How many columns each user's training row fills (before cutting): the sort key of length bucketing."""
    lengths = train.lengths()[users]
    inputs = lengths - 1 if model.objective == "causal" else lengths
    return np.minimum(inputs, model.config.max_len)


def epoch_batches(order: np.ndarray, batch_size: int, bucketing: int = 0, widths: np.ndarray | None = None,
                  generator: np.random.Generator | None = None) -> list[np.ndarray]:
    """The epoch's batches of users: ``order`` in consecutive slices, or with ``bucketing`` k > 0, each pool of
    k batches of ``order`` sorted by ``widths`` (aligned with ``order``; a stable sort keeps the shuffled order
    among equal widths) and cut into batches, then every batch of the epoch in a random order.
    Every user of ``order`` is in exactly one batch either way."""
    if not bucketing:
        return [order[start:start + batch_size] for start in range(0, len(order), batch_size)]
    if widths is None or generator is None:
        raise ValueError("length bucketing needs the rows' widths and the epoch's generator")
    pool = bucketing * batch_size
    batches = []
    for start in range(0, len(order), pool):
        users = order[start:start + pool]
        users = users[np.argsort(widths[start:start + pool], kind="stable")]
        batches += [users[i:i + batch_size] for i in range(0, len(users), batch_size)]
    return [batches[i] for i in generator.permutation(len(batches))]


def causal_batch(train: Ragged, users: np.ndarray, max_len: int, window: str = "latest",
                 generator: np.random.Generator | None = None, to_longest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    # max_len inputs need max_len + 1 items (the targets are the inputs shifted by one).
    rows = crop_to_window(train.take(users), max_len + 1, window, generator)
    lengths = rows.lengths()
    inputs = rows.truncate(lengths - 1)
    # Targets are the same rows shifted by one: drop each row's first item.
    keep = rows.positions() > 0
    targets = Ragged.from_lengths(rows.values[keep], lengths - 1)
    return left_pad(inputs, max_len, to_longest=to_longest), left_pad(targets, max_len, to_longest=to_longest)


def training_batch(model, train: Ragged, users: np.ndarray, window: str, generator: np.random.Generator,
                   to_longest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(inputs, targets) of ``users`` for ``model``'s objective: next items (causal) or masked items (cloze)."""
    if model.objective == "causal":
        return causal_batch(train, users, model.config.max_len, window, generator, to_longest)
    return cloze_batch(train, users, model.config.max_len, model.config.mask_prob, model.mask_token, generator, window,
                       to_longest)


def cloze_batch(train: Ragged, users: np.ndarray, max_len: int, mask_prob: float, mask_token: int,
                generator: np.random.Generator, window: str = "latest",
                to_longest: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    seqs = left_pad(crop_to_window(train.take(users), max_len, window, generator), max_len, to_longest=to_longest)
    real = seqs != 0
    # Drawn for max_len columns whatever the width: a cut batch gets the masks of the padded one.
    draws = generator.random((len(seqs), max_len))[:, max_len - seqs.shape[1]:]
    chosen = torch.from_numpy(draws < mask_prob) & real
    # Guarantee at least one masked position per row: the most recent item, as at inference.
    chosen[:, -1] |= real[:, -1]
    inputs = seqs.masked_fill(chosen, mask_token)
    targets = seqs.masked_fill(~chosen, 0)
    return inputs, targets
