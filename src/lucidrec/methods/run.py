"""Running a config whose item embedding belongs to a method: its recipe's stages, then the run.

A config with a plain item embedding (id, frozen) goes straight to :func:`lucidrec.train.run.train_run`.
"""

from __future__ import annotations

import contextlib
import os
import shutil
from pathlib import Path

from lucidrec.config import validate_config
from lucidrec.data.pipeline import load_split
from lucidrec.errors import LucidrecError
from lucidrec.files import write_json_atomic
from lucidrec.locks import hold
from lucidrec.methods import run_index
from lucidrec.methods.recipe import RECIPES, Recipe, RecipeContext, StageStatus, run_status
from lucidrec.train import run as runs
from lucidrec.train.migrate import saved_run_config
from lucidrec.train.run import RunConfig


def recipe_for(config: RunConfig) -> Recipe | None:
    """The recipe of the config's item embedding, or None for a plain one."""
    name = config.embedding["name"]
    return RECIPES.get(name)() if name in RECIPES else None


def prepare(config: RunConfig, out: Path) -> None:
    """Run (or reuse, or resume) every stage before the final run of ``out``."""
    recipe = recipe_for(config)
    if recipe is None:
        return
    data, split = load_split(config.data)
    with _holding(out):
        _prepare(recipe, config, Path(out), data, split)


def _prepare(recipe: Recipe, config: RunConfig, out: Path, data, split) -> None:
    out.mkdir(parents=True, exist_ok=True)
    # Written before the stages, so `lucidrec method status` can read a run killed in one of them.
    if not (out / "config.json").is_file():
        write_json_atomic(out / "config.json", config.model_dump(mode="json"))
    recipe.prepare(RecipeContext(config, data, split, out))


def _holding(out: Path):
    """The run folder's lock while a recipe writes into it (train_run re-enters it in this process);
    under torchrun only rank 0 holds it, as in train_run."""
    return hold(out) if int(os.environ.get("RANK", "0")) == 0 else contextlib.nullcontext()


@contextlib.contextmanager
def _removed_on_user_error(out: Path, created: bool):
    """A stage that fails on a setting or input the user must fix (no attribute set, an LLM stage without
    answers) leaves no half-made run folder this call created; other failures keep it (resumable work)."""
    try:
        yield
    except LucidrecError:
        if created and int(os.environ.get("RANK", "0")) == 0:
            shutil.rmtree(out, ignore_errors=True)
        raise


def train(config: RunConfig, out: Path, resume: bool = False, stop_after_epochs: int | None = None) -> dict:
    """The recipe's stages, then :func:`~lucidrec.train.run.train_run` (same arguments and result)."""
    out = Path(out)
    recipe = recipe_for(config)
    if recipe is None:
        result = runs.train_run(config, out, resume=resume, stop_after_epochs=stop_after_epochs)
    else:
        data, split = load_split(config.data)
        created = not out.exists()
        with _holding(out):
            runs.check_folder(config, out, data.data_hash, resume)  # before a stage writes into the folder
            with _removed_on_user_error(out, created):
                _prepare(recipe, config, out, data, split)
            result = runs.train_run(config, out, resume=resume, stop_after_epochs=stop_after_epochs)
    _remember(config, out)
    return result


def train_or_reuse(config: RunConfig, out: Path) -> dict:
    """:func:`lucidrec.train.run.train_or_reuse` for any config: the recipe runs when the run is not finished."""
    out = Path(out)
    recipe = recipe_for(config)
    if recipe is None or (out / "metrics.json").is_file():  # a finished run goes on with what it kept
        result = runs.train_or_reuse(config, out)
    else:
        data, split = load_split(config.data)
        created = not out.exists()
        with _holding(out):
            with _removed_on_user_error(out, created):
                _prepare(recipe, config, out, data, split)
            result = runs.train_or_reuse(config, out)
    _remember(config, out)
    return result


def _remember(config: RunConfig, out: Path) -> None:
    """Finished id runs are recorded, so a method needing this very id run (LLMEmb's E_cf) reuses it."""
    if config.embedding["name"] == "id":
        run_index.record(config, out)


def status(run: Path) -> list[StageStatus]:
    """Each stage of the run's method (or the run alone, for a plain embedding): done, partial, missing."""
    run = Path(run)
    config = validate_config(RunConfig, saved_run_config(run), f"{run}/config.json")
    recipe = recipe_for(config)
    if recipe is None:
        return [run_status("run", run)]
    data, split = load_split(config.data)
    return recipe.status(RecipeContext(config, data, split, run))
