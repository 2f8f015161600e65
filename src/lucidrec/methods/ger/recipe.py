"""The GER recipe: ``base_run → attribute_scores → refined_run``.

- ``base_run``: the run whose item table is PCA-reduced into the non-attribute block (given as
  ``embedding.base.run``, or an id-based ``base.model`` run trained and cached; mode ``guided`` needs none);
- ``attribute_scores``: every item (and with ``user.init="llm"`` every user) scored on the named
  attributes, z-scored, with the reduced base table: ``<run>/ger/state.npz`` + ``meta.json``, keyed by
  the GER settings, the data and the width (scorer answers and vectors are cached by the LM layer);
- ``refined_run``: the run itself over the ``ger`` item embedding, which reads ``<run>/ger/``.
"""

from __future__ import annotations

from pathlib import Path

from lucidrec.config import validate_config
from lucidrec.embeddings.ger.config import GERConfig
from lucidrec.embeddings.ger.state_files import STATE_DIR, fingerprint, read_state, write_state
from lucidrec.files import read_json
from lucidrec.methods.ger.state import auto_base_run, base_run_config, compute_state
from lucidrec.methods.recipe import RECIPES, Recipe, RecipeContext, StageState, StageStatus, run_status


def ger_config(context: RecipeContext) -> GERConfig:
    params = {k: v for k, v in context.config.embedding.items() if k != "name"}
    return validate_config(GERConfig, params, "embedding 'ger'")


@RECIPES.register("ger")
class GERRecipe(Recipe):
    stages = ("base_run", "attribute_scores", "refined_run")

    def prepare(self, context: RecipeContext) -> None:
        config = ger_config(context)
        dim = context.config.model["hidden"]
        key = fingerprint(config, context.data.data_hash, dim)
        folder = Path(context.run_dir) / STATE_DIR
        if read_state(folder, key) is not None:
            return
        base = None
        if config.mode != "guided":
            base = Path(config.base.run) if config.base.run else auto_base_run(config, context.config, dim)
        arrays, meta, _ = compute_state(config, context, dim, base, tuning=(folder / "scorer_tuning", key))
        meta["fingerprint"] = key
        write_state(folder, arrays, meta)

    def status(self, context: RecipeContext) -> list[StageStatus]:
        config = ger_config(context)
        dim = context.config.model["hidden"]
        out = []
        if config.mode == "guided":
            out.append(StageStatus("base_run", StageState.SKIPPED, note="mode 'guided' has no base block"))
        elif config.base.run:
            stage = run_status("base_run", Path(config.base.run))
            out.append(StageStatus(stage.name, stage.state, stage.where, "given (embedding.base.run)"))
        else:
            out.append(run_status("base_run", base_run_config(config, context.config, dim)[1]))
        folder = Path(context.run_dir) / STATE_DIR
        key = fingerprint(config, context.data.data_hash, dim)
        if (folder / "meta.json").is_file() and read_json(folder / "meta.json").get("fingerprint") == key:
            out.append(StageStatus("attribute_scores", StageState.DONE, str(folder)))
        elif (folder / "scorer_tuning").is_dir():
            out.append(StageStatus("attribute_scores", StageState.PARTIAL, str(folder), "scorer tuning resumes"))
        else:
            note = "made for other settings" if (folder / "meta.json").is_file() else ""
            out.append(StageStatus("attribute_scores", StageState.MISSING, str(folder), note))
        out.append(run_status("refined_run", context.run_dir))
        return out
