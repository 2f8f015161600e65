"""The two objects every loader produces: interactions and an item catalog with text.

Ids stay as the original strings here; contiguous integer ids are assigned later by
:func:`lucidrec.data.prepare.prepare`, which keeps the vocabulary to map back.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lucidrec.errors import DataFormatError

INTERACTION_COLUMNS = ("user_id", "item_id", "seq_pos", "timestamp", "rating")


def _is_missing_text(value) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and np.isnan(value):
        return True
    if isinstance(value, str):
        return not value.strip()
    if isinstance(value, (list, tuple, np.ndarray)):
        return len(value) == 0
    return value is pd.NA


def text_of(value) -> str:
    """Render one catalog field as plain text (lists joined by commas, missing as '')."""
    if _is_missing_text(value):
        return ""
    if isinstance(value, (list, tuple, np.ndarray)):
        return ", ".join(text_of(v) for v in value if not _is_missing_text(v))
    return str(value).strip()


@dataclass
class ItemCatalog:
    """Item id -> title and other text fields.

    ``frame`` is indexed by the original item id (string); every column is a text field (lists are
    allowed, e.g. genres). Items may lack text: :meth:`has_text` says which.
    """

    frame: pd.DataFrame

    def __post_init__(self) -> None:
        if self.frame.index.name != "item_id":
            if "item_id" not in self.frame.columns:
                raise DataFormatError("<item catalog>", "missing column", field="item_id")
            self.frame = self.frame.set_index("item_id")
        self.frame.index = self.frame.index.astype(str)
        if self.frame.index.has_duplicates:
            dup = self.frame.index[self.frame.index.duplicated()][0]
            raise DataFormatError("<item catalog>", f"item id '{dup}' appears more than once", field="item_id")

    @classmethod
    def empty(cls) -> "ItemCatalog":
        return cls(pd.DataFrame({"title": pd.Series([], dtype="string")}, index=pd.Index([], name="item_id", dtype=str)))

    @property
    def fields(self) -> list[str]:
        return list(self.frame.columns)

    def __len__(self) -> int:
        return len(self.frame)

    def __contains__(self, item_id: str) -> bool:
        return str(item_id) in self.frame.index

    def record(self, item_id: str) -> dict[str, str]:
        """All text fields of one item as strings ('' where missing; unknown ids give all '')."""
        if item_id not in self.frame.index:
            return {name: "" for name in self.fields}
        row = self.frame.loc[item_id]
        return {name: text_of(row[name]) for name in self.fields}

    def title(self, item_id: str) -> str:
        return self.record(item_id).get("title", "")

    def has_text(self, item_ids) -> np.ndarray:
        """Boolean per requested id: does the item have any non-empty text field?"""
        out = np.zeros(len(item_ids), dtype=bool)
        if not self.fields or self.frame.empty:
            return out
        # astype(bool): an empty or all-string frame keeps the string dtype, which cannot reduce with any()
        present = self.frame.map(lambda v: not _is_missing_text(v)).astype(bool).any(axis=1)
        lookup = present.reindex(pd.Index([str(i) for i in item_ids]), fill_value=False)
        return lookup.to_numpy(dtype=bool)


@dataclass
class Dataset:
    """Interactions (one row per event, in per-user order) plus the item catalog.

    ``interactions`` has the columns of :data:`INTERACTION_COLUMNS`; ``seq_pos`` is the 0-based
    order inside the user's history and is authoritative (timestamps may tie or be missing).
    """

    name: str
    interactions: pd.DataFrame
    items: ItemCatalog = field(default_factory=ItemCatalog.empty)
    source: str = ""
    notes: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        given = self.interactions
        self.interactions = normalise_interactions(given, origin=self.source or self.name)
        if "seq_pos" not in given.columns:
            self.notes.append(order_note(self.interactions))

    @property
    def has_timestamps(self) -> bool:
        return bool(self.interactions["timestamp"].notna().any())

    def content_hash(self) -> str:
        """A short, stable hash of the interactions (order included): identifies the data a run used."""
        frame = self.interactions[list(INTERACTION_COLUMNS)]
        digest = hashlib.sha256()
        digest.update(pd.util.hash_pandas_object(frame, index=False).to_numpy().tobytes())
        return digest.hexdigest()[:16]


def normalise_interactions(frame: pd.DataFrame, origin: str | Path = "<interactions>") -> pd.DataFrame:
    """Check columns and dtypes, derive ``seq_pos`` when missing, sort by (user, seq_pos)."""
    for required in ("user_id", "item_id"):
        if required not in frame.columns:
            raise DataFormatError(origin, f"missing column (has: {', '.join(map(str, frame.columns))})", field=required)
    out = pd.DataFrame(
        {
            "user_id": frame["user_id"].astype("string"),
            "item_id": frame["item_id"].astype("string"),
        }
    )
    for name in ("user_id", "item_id"):
        missing = out[name].isna()
        if missing.any():
            row = int(np.flatnonzero(missing.to_numpy())[0])
            raise DataFormatError(origin, f"{int(missing.sum())} empty value(s), first at row {row}", field=name)
    out["timestamp"] = _as_nullable(frame, "timestamp", "Int64", origin)
    out["rating"] = _as_nullable(frame, "rating", "Float32", origin)
    if "seq_pos" in frame.columns:
        positions = pd.to_numeric(frame["seq_pos"], errors="coerce")
        bad = positions.isna() | (positions != positions.round())
        if bad.any():
            row = int(np.flatnonzero(bad.to_numpy())[0])
            raise DataFormatError(origin, f"{int(bad.sum())} value(s) that are not integers, first at row {row} "
                                  f"({frame['seq_pos'].iloc[row]!r})", field="seq_pos")
        out["seq_pos"] = positions.astype("int64").to_numpy()
        repeated = pd.DataFrame({"u": out["user_id"], "p": out["seq_pos"]}).duplicated()
        if repeated.any():  # two items at one position: the order of the history would be arbitrary
            row = int(np.flatnonzero(repeated.to_numpy())[0])
            raise DataFormatError(origin, f"user {out['user_id'].iloc[row]!r} has position {out['seq_pos'].iloc[row]} "
                                  f"twice (row {row})", field="seq_pos")
    else:
        # Stable sort keeps file order among equal (or missing) timestamps.
        order_key = out["timestamp"].fillna(-1) if out["timestamp"].notna().any() else pd.Series(0, index=out.index)
        tmp = pd.DataFrame({"u": out["user_id"], "t": order_key, "row": np.arange(len(out))})
        tmp = tmp.sort_values(["u", "t", "row"], kind="stable")
        pos = tmp.groupby("u", sort=False).cumcount()
        out["seq_pos"] = pos.reindex(out.index).to_numpy()
    out = out.sort_values(["user_id", "seq_pos"], kind="stable").reset_index(drop=True)
    out["seq_pos"] = out["seq_pos"].astype("int32")
    return out[list(INTERACTION_COLUMNS)]


def order_note(interactions: pd.DataFrame) -> str:
    """How the order of each history was derived when the data gave no ``seq_pos`` (see
    :func:`normalise_interactions`): it decides which item is the test target, so it is stated."""
    stamps = interactions["timestamp"]
    if not stamps.notna().any():
        return "no seq_pos and no timestamps: each user's history is in the file's row order"
    timed = interactions[stamps.notna()]
    ties = int(timed.duplicated(["user_id", "timestamp"]).sum())
    untimed = int(stamps.isna().sum())
    parts = ["no seq_pos: each user's history is ordered by timestamp"]
    if ties:
        parts.append(f"{ties} tie{'s' if ties != 1 else ''} (equal timestamps of one user) keep the file's row order")
    if untimed:
        parts.append(f"{untimed} interaction(s) without a timestamp come first, in the file's row order")
    return "; ".join(parts)


def _as_nullable(frame: pd.DataFrame, name: str, dtype: str, origin) -> pd.Series:
    if name not in frame.columns:
        return pd.Series(pd.array([pd.NA] * len(frame), dtype=dtype), index=frame.index)
    column = frame[name]
    try:
        return column.astype(dtype)
    except (TypeError, ValueError):
        numeric = pd.to_numeric(column, errors="coerce")
        bad = numeric.isna() & column.notna()
        row = int(np.flatnonzero(bad.to_numpy())[0]) if bad.any() else None
        value = column.iloc[row] if row is not None else None
        raise DataFormatError(origin, f"not a number at row {row}: {value!r}", field=name) from None
