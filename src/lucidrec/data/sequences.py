"""Integer-coded histories: the form every split, model and evaluator works on."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lucidrec.data.dataset import ItemCatalog
from lucidrec.errors import UnknownNameError

PAD = 0
PAD_TOKEN = "<pad>"


@dataclass
class Ragged:
    """Variable-length int rows in one flat array (CSR style): row ``i`` is ``values[offsets[i]:offsets[i+1]]``."""

    offsets: np.ndarray
    values: np.ndarray

    @classmethod
    def from_lists(cls, rows, dtype=np.int64) -> "Ragged":
        rows = [np.asarray(r, dtype=dtype) for r in rows]
        lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
        offsets = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        values = np.concatenate(rows) if rows else np.zeros(0, dtype=dtype)
        return cls(offsets, values.astype(dtype, copy=False))

    @classmethod
    def from_lengths(cls, values: np.ndarray, lengths: np.ndarray) -> "Ragged":
        offsets = np.zeros(len(lengths) + 1, dtype=np.int64)
        np.cumsum(lengths, out=offsets[1:])
        return cls(offsets, values)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, i: int) -> np.ndarray:
        return self.values[self.offsets[i] : self.offsets[i + 1]]

    def lengths(self) -> np.ndarray:
        return np.diff(self.offsets)

    def take(self, rows: np.ndarray) -> "Ragged":
        """A new Ragged with the given rows, in that order."""
        rows = np.asarray(rows, dtype=np.int64)
        lengths = self.lengths()[rows]
        starts = self.offsets[rows]
        index = np.repeat(starts - np.concatenate([[0], np.cumsum(lengths)[:-1]]), lengths) + np.arange(lengths.sum())
        return Ragged.from_lengths(self.values[index], lengths)

    def truncate(self, new_lengths: np.ndarray) -> "Ragged":
        """Keep the first ``new_lengths[i]`` values of every row ``i``."""
        new_lengths = np.minimum(np.asarray(new_lengths, dtype=np.int64), self.lengths())
        keep = self.positions() < np.repeat(new_lengths, self.lengths())
        return Ragged.from_lengths(self.values[keep], new_lengths)

    def row_ids(self) -> np.ndarray:
        """For every value, the row it belongs to."""
        return np.repeat(np.arange(len(self)), self.lengths())

    def positions(self) -> np.ndarray:
        """For every value, its 0-based position inside its row."""
        return np.arange(len(self.values)) - np.repeat(self.offsets[:-1], self.lengths())


@dataclass
class SequenceData:
    """Users' time-ordered item histories with contiguous ids.

    Item index 0 is padding; real items are ``1..n_items``. ``item_ids[i]`` / ``user_ids[u]`` give
    the original string ids back. ``timestamps`` is aligned with ``sequences`` (NaN where unknown)
    or ``None`` when the dataset has no timestamps at all.
    """

    name: str
    user_ids: np.ndarray
    item_ids: np.ndarray
    sequences: Ragged
    catalog: ItemCatalog
    timestamps: Ragged | None = None
    data_hash: str = ""
    report: dict = field(default_factory=dict)

    @property
    def n_users(self) -> int:
        return len(self.user_ids)

    @property
    def n_items(self) -> int:
        return len(self.item_ids) - 1

    def item_index(self, original_ids) -> np.ndarray:
        """Integer ids of original item ids; unknown ids raise an error naming the first one."""
        lookup = self._lookup("_item_lookup", self.item_ids)
        return self._map(lookup, original_ids, "item")

    def user_index(self, original_ids) -> np.ndarray:
        lookup = self._lookup("_user_lookup", self.user_ids)
        return self._map(lookup, original_ids, "user")

    def _lookup(self, attribute: str, ids: np.ndarray) -> dict:
        if not hasattr(self, attribute):
            object.__setattr__(self, attribute, {str(v): i for i, v in enumerate(ids)})
        return getattr(self, attribute)

    @staticmethod
    def _map(lookup: dict, original_ids, kind: str) -> np.ndarray:
        out = np.empty(len(original_ids), dtype=np.int64)
        for n, value in enumerate(original_ids):
            index = lookup.get(str(value))
            if index is None or (kind == "item" and index == PAD):
                sample = list(lookup)[1:6] if kind == "item" else list(lookup)[:5]
                raise UnknownNameError(f"{kind} id", str(value), [*sample, "..."])
            out[n] = index
        return out
