"""A method is a recipe: named stages, each a content-addressed artifact, ending in the run itself.

A recipe prepares everything its item embedding reads from the run folder (a tuned encoder's table,
a reference run's items, attribute scores) before :func:`lucidrec.train.run.train_run` trains the
final stage. Every stage is keyed by its config and inputs: a matching artifact is reused, a killed
one resumes, a changed config gets a new one. ``status`` tells, per stage, whether it is done,
partly done (resumable), missing, or not needed by these settings.
"""

from __future__ import annotations

import contextlib
import sys
from abc import ABC, abstractmethod
from dataclasses import dataclass
from enum import Enum
from pathlib import Path

import numpy as np
import torch

from lucidrec.data.sequences import SequenceData
from lucidrec.data.split import Split
from lucidrec.registry import Registry
from lucidrec.train import checkpoint
from lucidrec.train.run import RunConfig


class StageState(str, Enum):
    DONE = "done"  # its artifact is complete and matches the settings
    PARTIAL = "partial"  # started and killed: the next run resumes it
    MISSING = "missing"  # not built yet (or built for other settings)
    SKIPPED = "not needed"  # these settings do not use the stage


@dataclass(frozen=True)
class StageStatus:
    name: str
    state: StageState
    where: str | None = None
    note: str = ""


@dataclass
class RecipeContext:
    """What every stage of a run's recipe may read: the run's config, its data and split, its folder."""

    config: RunConfig
    data: SequenceData
    split: Split
    run_dir: Path

    @property
    def progress(self) -> bool:
        return bool(self.config.train.progress)


class Recipe(ABC):
    """The stages of one method (the item embedding it serves is its registered name)."""

    #: stage names in order; the last is the run itself (trained by ``train_run``)
    stages: tuple[str, ...] = ()

    @abstractmethod
    def prepare(self, context: RecipeContext) -> None:
        """Run (or reuse, or resume) every stage before the final run."""

    @abstractmethod
    def status(self, context: RecipeContext) -> list[StageStatus]:
        """Every stage's state for this run, without building anything."""


RECIPES: Registry[type[Recipe]] = Registry("method recipe")


def say(method: str, message: str, progress: bool = True) -> None:
    if progress:
        print(f"{method}: {message}", file=sys.stderr, flush=True)


def run_status(name: str, run: Path) -> StageStatus:
    """The state of a training run folder used as a stage (the final run, or a reference run)."""
    run = Path(run)
    if (run / "metrics.json").is_file():
        return StageStatus(name, StageState.DONE, str(run))
    if checkpoint.exists(run):
        return StageStatus(name, StageState.PARTIAL, str(run), "killed: resumes from its last checkpoint")
    return StageStatus(name, StageState.MISSING, str(run))


@contextlib.contextmanager
def isolated_rng():
    """Heavy stages (SCFT, a nested run) must not shift the caller's random streams: a cached and a
    freshly built chain then give the same initialisation to whatever the caller builds next."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            np.random.set_state(state)
