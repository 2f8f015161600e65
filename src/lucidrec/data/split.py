"""Train / validation / test splits for next-item evaluation.

Two protocols:

- ``leave_one_out``: per user, the last item is the test target, the second to last the validation
  target, the rest is training. Users with fewer than ``min_length`` interactions are training-only
  (counted in ``info``). Note that this protocol is per user: another user's *training* items may be
  later in time than this user's test item (Meng et al. 2020; Ji et al. 2023). Use
  ``global_temporal`` when that matters.
- ``global_temporal``: one validation cut-off time and one test cut-off time for everyone.
  Training holds only interactions strictly before the validation cut-off; the target of a
  validation (test) user is their first interaction at or after the validation (test) cut-off, and
  their history is everything strictly before that cut-off.

Either protocol can hold out *new items* (:func:`hold_out_new_items`): a fixed random share of the
catalog is removed from every training sequence, so those items are never an input or a target in
training, while validation and test keep their targets and histories as they were; the evaluator then
reports a ``new`` group (users whose target is such an item).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucidrec.data.sequences import Ragged, SequenceData
from lucidrec.errors import LucidrecError


@dataclass
class EvalSet:
    """Users to evaluate, the history each is conditioned on, and the single held-out target."""

    users: np.ndarray
    history: Ragged
    targets: np.ndarray

    def __len__(self) -> int:
        return len(self.users)

    def subset(self, rows: np.ndarray) -> "EvalSet":
        return EvalSet(self.users[rows], self.history.take(rows), self.targets[rows])


@dataclass
class Split:
    protocol: str
    train: Ragged  # one row per user (all users of the data, possibly empty rows)
    valid: EvalSet
    test: EvalSet
    n_items: int
    info: dict = field(default_factory=dict)
    #: item indices held out of training (the new-item protocol); None on an ordinary split
    new_items: np.ndarray | None = None

    def item_counts(self) -> np.ndarray:
        """Training interactions per item index (index 0, padding, is 0)."""
        return np.bincount(self.train.values, minlength=self.n_items + 1)


def leave_one_out(data: SequenceData, min_length: int = 3) -> Split:
    if min_length < 3:
        raise ValueError("leave-one-out needs at least 3 interactions per evaluated user (train, valid, test)")
    lengths = data.sequences.lengths()
    evaluated = np.flatnonzero(lengths >= min_length)
    seqs = data.sequences
    train = seqs.truncate(np.where(lengths >= min_length, lengths - 2, lengths))
    last = seqs.offsets[1:] - 1
    valid = EvalSet(evaluated, train.take(evaluated), seqs.values[last[evaluated] - 1])
    test = EvalSet(evaluated, seqs.truncate(lengths - 1).take(evaluated), seqs.values[last[evaluated]])
    info = {
        "users": data.n_users,
        "users_evaluated": len(evaluated),
        "users_train_only": int(data.n_users - len(evaluated)),
        "min_length": min_length,
    }
    return Split("leave_one_out", train, valid, test, data.n_items, info)


def global_temporal(
    data: SequenceData,
    valid_time: float | None = None,
    test_time: float | None = None,
    valid_quantile: float = 0.8,
    test_quantile: float = 0.9,
) -> Split:
    if data.timestamps is None:
        raise LucidrecError(f"dataset '{data.name}' has no timestamps: use leave_one_out instead")
    times = data.timestamps.values
    known = ~np.isnan(times)
    if valid_time is None or test_time is None:
        valid_time = float(np.quantile(times[known], valid_quantile)) if valid_time is None else valid_time
        test_time = float(np.quantile(times[known], test_quantile)) if test_time is None else test_time
    if not valid_time <= test_time:
        raise LucidrecError(f"data.split: valid_time ({valid_time}) must not be after test_time ({test_time})")
    rows = data.sequences.row_ids()
    items = data.sequences.values
    # Interactions without a timestamp cannot be placed in time: they are left out and counted.
    times_filled = np.where(known, times, np.inf)

    def history_before(cut: float) -> Ragged:
        mask = known & (times_filled < cut)
        return Ragged.from_lengths(items[mask], np.bincount(rows[mask], minlength=data.n_users))

    def targets_from(cut: float, until: float, history: Ragged) -> EvalSet:
        in_window = known & (times_filled >= cut) & (times_filled < until)
        first = np.full(data.n_users, -1, dtype=np.int64)
        candidates = np.flatnonzero(in_window)
        # First interaction in the window per user: by time, then by the user's own order.
        order = candidates[np.lexsort((candidates, times_filled[candidates], rows[candidates]))]
        users_in_window, first_index = np.unique(rows[order], return_index=True)
        first[users_in_window] = items[order[first_index]]
        users = np.flatnonzero((first >= 0) & (history.lengths() > 0))
        return EvalSet(users, history.take(users), first[users])

    train = history_before(valid_time)
    valid = targets_from(valid_time, test_time, train)
    test_history = history_before(test_time)
    test = targets_from(test_time, np.inf, test_history)
    info = {
        "users": data.n_users,
        "valid_time": valid_time,
        "test_time": test_time,
        "interactions_without_timestamp": int((~known).sum()),
        "users_valid": len(valid),
        "users_test": len(test),
    }
    return Split("global_temporal", train, valid, test, data.n_items, info)


def draw_new_items(n_items: int, fraction: float, seed: int = 0) -> np.ndarray:
    """A fixed random ``fraction`` of the item indices 1..n_items (sorted), drawn from ``seed``."""
    if not 0 < fraction < 1:
        raise LucidrecError(f"data.split.new_items must be in (0, 1), got {fraction}")
    n_new = int(round(fraction * n_items))
    if n_new < 1:
        raise LucidrecError(f"data.split.new_items={fraction} of {n_items} items holds out no item")
    return np.sort(np.random.default_rng(seed).permutation(np.arange(1, n_items + 1))[:n_new])


def hold_out_new_items(split: Split, new_items: np.ndarray, **info) -> Split:
    """Remove ``new_items`` (item indices) from every training sequence.

    Validation and test keep their targets and histories (what the users did; at serving time a new item
    can be in a history too), so a held-out item is scored from whatever the model makes of it without
    training. Users whose training rows become empty are counted (``users_without_training_history``);
    they take no part in training (the trainer skips empty rows) but keep their evaluation rows.
    """
    new_items = np.unique(np.asarray(new_items, dtype=np.int64))
    if len(new_items) and (new_items.min() < 1 or new_items.max() > split.n_items):
        raise LucidrecError(f"new items must be item indices in 1..{split.n_items}")
    is_new = np.zeros(split.n_items + 1, dtype=bool)
    is_new[new_items] = True
    train = split.train
    keep = ~is_new[train.values]
    kept = Ragged.from_lengths(train.values[keep], np.bincount(train.row_ids()[keep], minlength=len(train)))
    info = {
        **split.info,
        **info,
        "new_items": int(len(new_items)),
        "training_interactions_removed": int((~keep).sum()),
        "users_without_training_history": int(((train.lengths() > 0) & (kept.lengths() == 0)).sum()),
        "valid_new_targets": int(is_new[split.valid.targets].sum()),
        "test_new_targets": int(is_new[split.test.targets].sum()),
    }
    return Split(split.protocol, kept, split.valid, split.test, split.n_items, info, new_items=new_items)


SPLITS = {"leave_one_out": leave_one_out, "global_temporal": global_temporal}
