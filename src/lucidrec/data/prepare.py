"""From a loaded :class:`Dataset` to integer-coded :class:`SequenceData`.

Steps, each counted in the report so nothing disappears silently: rating threshold, duplicate
(user, item) handling, count filters (iterative k-core or the single pass some papers use), a
minimum history length, then contiguous ids.
"""

from __future__ import annotations

import hashlib
from typing import Literal

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from lucidrec.data.dataset import Dataset
from lucidrec.data.sequences import PAD_TOKEN, Ragged, SequenceData


class PrepareConfig(BaseModel):
    """How raw interactions become training sequences. The defaults keep the data as stored."""

    model_config = ConfigDict(extra="forbid")

    min_rating: float | None = Field(None, description="drop rated interactions below this; unrated rows are kept")
    duplicates: Literal["keep", "first", "last"] = Field(
        "keep", description="repeated (user, item) pairs: keep all, or keep only the first/last occurrence"
    )
    min_user_interactions: int = Field(0, ge=0, description="users need at least this many interactions")
    min_item_interactions: int = Field(0, ge=0, description="items need at least this many interactions")
    filter_mode: Literal["iterative", "single_pass"] = Field(
        "iterative", description="iterative k-core, or one pass of both counts on the unfiltered data (LLMEmb, LANE)"
    )
    min_history: int = Field(0, ge=0, description="after filtering, drop users with fewer interactions")

    def is_identity(self) -> bool:
        return self == PrepareConfig()


def prepare(dataset: Dataset, config: PrepareConfig | None = None) -> SequenceData:
    config = config or PrepareConfig()
    frame = dataset.interactions
    report: dict[str, int | str] = {"interactions_in": len(frame)}

    if config.min_rating is not None:
        keep = frame["rating"].isna() | (frame["rating"] >= config.min_rating)
        report["dropped_by_rating"] = int((~keep).sum())
        report["unrated_kept"] = int(frame["rating"].isna().sum())
        frame = frame[keep.to_numpy()]

    duplicated = frame.duplicated(["user_id", "item_id"], keep=False)
    report["duplicate_pairs"] = int(frame.duplicated(["user_id", "item_id"]).sum())
    if config.duplicates != "keep" and duplicated.any():
        keep = ~frame.duplicated(["user_id", "item_id"], keep=config.duplicates)
        report["dropped_duplicates"] = int((~keep).sum())
        frame = frame[keep.to_numpy()]

    before = len(frame)
    frame = _count_filter(frame, config)
    report["dropped_by_count_filter"] = before - len(frame)

    if config.min_history:
        lengths = frame.groupby("user_id", sort=False)["item_id"].transform("size")
        short = lengths < config.min_history
        report["dropped_short_users"] = int(frame.loc[short.to_numpy(), "user_id"].nunique())
        frame = frame[~short.to_numpy()]

    data = encode(frame, dataset)
    # The hash names both the stored data and what preparation did to it: runs compare it on resume.
    data.data_hash = hashlib.sha256(f"{dataset.content_hash()}|{config.model_dump_json()}".encode()).hexdigest()[:16]
    report.update(interactions_out=len(frame), users_out=data.n_users, items_out=data.n_items)
    data.report = report
    return data


def _count_filter(frame: pd.DataFrame, config: PrepareConfig) -> pd.DataFrame:
    min_user, min_item = config.min_user_interactions, config.min_item_interactions
    if not (min_user or min_item):
        return frame
    while True:
        users = frame.groupby("user_id", sort=False)["item_id"].transform("size")
        items = frame.groupby("item_id", sort=False)["user_id"].transform("size")
        keep = ((users >= min_user) & (items >= min_item)).to_numpy()
        if keep.all():
            return frame
        frame = frame[keep]
        if config.filter_mode == "single_pass":
            return frame


def encode(frame: pd.DataFrame, dataset: Dataset) -> SequenceData:
    """Contiguous ids (sorted original ids; item 0 = padding) and per-user ordered histories."""
    frame = frame.sort_values(["user_id", "seq_pos"], kind="stable")
    user_codes, user_ids = pd.factorize(frame["user_id"], sort=True)
    item_codes, item_ids = pd.factorize(frame["item_id"], sort=True)
    lengths = np.bincount(user_codes, minlength=len(user_ids))
    sequences = Ragged.from_lengths((item_codes + 1).astype(np.int64), lengths)
    timestamps = None
    if frame["timestamp"].notna().any():
        timestamps = Ragged.from_lengths(frame["timestamp"].astype("Float64").to_numpy(dtype=float, na_value=np.nan), lengths)
    return SequenceData(
        name=dataset.name,
        user_ids=np.asarray(user_ids, dtype=object),
        item_ids=np.asarray([PAD_TOKEN, *item_ids], dtype=object),
        sequences=sequences,
        catalog=dataset.items,
        timestamps=timestamps,
    )
