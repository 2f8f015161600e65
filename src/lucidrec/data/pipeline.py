"""One typed description of "which data, prepared how, split how", shared by every command."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from lucidrec.data import load_dataset
from lucidrec.data.prepare import PrepareConfig, prepare
from lucidrec.data.sequences import SequenceData
from lucidrec.data.split import Split, global_temporal, leave_one_out


class SplitConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    protocol: Literal["leave_one_out", "global_temporal"] = "leave_one_out"
    min_length: int = Field(3, ge=3, description="leave-one-out: shorter users are training-only")
    valid_quantile: float = Field(0.8, gt=0, lt=1, description="global temporal: validation cut-off as a time quantile")
    test_quantile: float = Field(0.9, gt=0, lt=1, description="global temporal: test cut-off as a time quantile")
    valid_time: float | None = Field(None, description="global temporal: explicit validation cut-off (unix seconds)")
    test_time: float | None = Field(None, description="global temporal: explicit test cut-off (unix seconds)")


class DataConfig(BaseModel):
    model_config = ConfigDict(extra="forbid")

    dataset: str = "ml-100k"
    data_dir: str | None = None
    on_bad_lines: Literal["raise", "skip"] = "raise"
    prepare: PrepareConfig = Field(default_factory=PrepareConfig)
    split: SplitConfig = Field(default_factory=SplitConfig)


def make_split(data: SequenceData, config: SplitConfig) -> Split:
    if config.protocol == "leave_one_out":
        return leave_one_out(data, config.min_length)
    return global_temporal(
        data, config.valid_time, config.test_time, config.valid_quantile, config.test_quantile
    )


def load_split(config: DataConfig) -> tuple[SequenceData, Split]:
    dataset = load_dataset(config.dataset, config.data_dir, on_bad_lines=config.on_bad_lines)
    data = prepare(dataset, config.prepare)
    data.report["notes"] = list(dataset.notes)
    return data, make_split(data, config.split)
