"""One typed description of "which data, prepared how, split how", shared by every command."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lucidrec.data import load_dataset
from lucidrec.data.prepare import PrepareConfig, prepare
from lucidrec.data.sequences import SequenceData
from lucidrec.data.split import Split, draw_new_items, global_temporal, hold_out_new_items, leave_one_out


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: Literal["leave_one_out", "global_temporal"] = "leave_one_out"
    min_length: int = Field(3, ge=3, description="leave-one-out: shorter users are training-only")
    valid_quantile: float = Field(0.8, gt=0, lt=1, description="global temporal: validation cut-off as a time quantile")
    test_quantile: float = Field(0.9, gt=0, lt=1, description="global temporal: test cut-off as a time quantile")
    valid_time: float | None = Field(None, description="global temporal: explicit validation cut-off (unix seconds)")
    test_time: float | None = Field(None, description="global temporal: explicit test cut-off (unix seconds)")
    new_items: float = Field(0.0, ge=0, lt=1, description="new-item protocol: this share of the catalog (drawn with "
                             "new_items_seed) is removed from every training sequence; validation/test keep their "
                             "targets, and the metrics gain a 'new' group; 0 = an ordinary split")
    new_items_seed: int = Field(0, description="seed of the held-out item draw (fixed across training seeds)")


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = "ml-100k"
    data_dir: str | None = None
    on_bad_lines: Literal["raise", "skip"] = "raise"
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)


def make_split(data: SequenceData, config: SplitConfig) -> Split:
    if config.protocol == "leave_one_out":
        split = leave_one_out(data, config.min_length)
    else:
        split = global_temporal(data, config.valid_time, config.test_time, config.valid_quantile, config.test_quantile)
    if not config.new_items:
        return split
    new_items = draw_new_items(split.n_items, config.new_items, config.new_items_seed)
    return hold_out_new_items(split, new_items, new_items_fraction=config.new_items, new_items_seed=config.new_items_seed)


def load_split(config: DataConfig) -> tuple[SequenceData, Split]:
    dataset = load_dataset(config.dataset, config.data_dir, on_bad_lines=config.on_bad_lines)
    data = prepare(dataset, config.prepare)
    data.report["notes"] = list(dataset.notes)
    return data, make_split(data, config.split)
