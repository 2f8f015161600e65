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


SPLITS = {"leave_one_out": leave_one_out, "global_temporal": global_temporal}
