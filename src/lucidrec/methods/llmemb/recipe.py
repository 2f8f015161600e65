"""The LLMEmb recipe: ``scft → item_table → collaborative_run → rat_run``.

- ``scft``: the sentence encoder tuned contrastively on attribute-dropout views of the item prompts
  (``<artifacts>/scft/<key>``; the ``frozen`` variant skips it);
- ``item_table``: the (tuned or frozen) encoder's table of the item prompts (``<artifacts>/tables/<key>``);
- ``collaborative_run``: E_cf, the items of an id-based SASRec (given, or trained under ``<artifacts>/cf/<key>``;
  only the ``full`` variant aligns);
- ``rat_run``: the run itself; the tables it uses are copied into ``<run>/llmemb/`` (keyed by the whole
  chain), where the ``llmemb`` item embedding reads them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.config import ConfigError, validate_config
from lucidrec.embeddings.llmemb.config import LLMEmbConfig, flat_settings
from lucidrec.embeddings.llmemb.rat import RUN_SUBDIR, read_tables, save_tables
from lucidrec.lm.models import locate_encoder
from lucidrec.methods import artifacts
from lucidrec.methods.llmemb.collaborative import cf_folder, get_collaborative_table, reference_run
from lucidrec.methods.llmemb.interactions import next_item_pairs, pairs_digest
from lucidrec.methods.llmemb.table import (get_item_table, item_prompts, say, scft_folder, table_folder,
                                          training_pairs)
from lucidrec.methods.recipe import (RECIPES, Recipe, RecipeContext, StageState, StageStatus, isolated_rng,
                                     run_status)
from lucidrec.train import checkpoint


def llmemb_config(context: RecipeContext) -> LLMEmbConfig:
    params = {k: v for k, v in context.config.embedding.items() if k != "name"}
    return validate_config(LLMEmbConfig, params, "embedding 'llmemb'")


def chain_key(config: LLMEmbConfig, data, dim: int, run_config, split=None) -> str:
    """What the tables of a run depend on (cheap to compute; identifies the copy kept in the run folder)."""
    settings = flat_settings(config)  # the flat names: keys of tables made before the stage sections stay valid
    # Settings that cannot change the tables. residual_id, table_scaling, adapter_activation and the id-part
    # and whitening options (applied when the module is built) are left out so that run folders made before
    # they existed keep their key; the adapter fields already in the key stay for that reason.
    for name in ("artifacts_dir", "scft_checkpoint_every", "encode_batch_size", "residual_id", "table_scaling",
                 "adapter_activation", "id_init", "id_dropout", "id_weight_decay", "whitening_shrinkage"):
        settings.pop(name, None)
    if settings.get("tuning") == "scft":
        settings.pop("tuning")
    elif config.needs_scft:  # tuned on the training pairs: the split decides them
        if split is None:
            raise ConfigError("llmemb: tuning='interactions' needs the run's split")
        settings["training_pairs"] = pairs_digest(next_item_pairs(split.train, np.ones(data.n_items + 1, dtype=bool)))
    cf = None
    if config.needs_alignment and config.reference.run:
        given = Path(config.reference.run).expanduser() / "item_table.npy"
        cf = artifacts.file_digest(given) if given.is_file() else str(given)  # a retrained run is noticed
    elif config.needs_alignment:
        _, cf = cf_folder(config, run_config, data.data_hash, dim)
    return artifacts.content_key({"llmemb": settings, "data_hash": data.data_hash, "dim": dim, "cf": cf})


@RECIPES.register("llmemb")
class LLMEmbRecipe(Recipe):
    stages = ("scft", "item_table", "collaborative_run", "rat_run")

    def prepare(self, context: RecipeContext) -> None:
        config = llmemb_config(context)
        key = chain_key(config, context.data, context.config.model["hidden"], context.config, context.split)
        copy = Path(context.run_dir) / RUN_SUBDIR
        if read_tables(copy, key) is not None:
            say(f"using the tables kept in {copy}", context.progress)
            return
        if checkpoint.exists(context.run_dir) and read_tables(copy) is not None:
            # A run goes on with the inputs it started with (a longer run changes the reference run's
            # epochs, and so the chain key; a version may choose the reference differently).
            say(f"resuming with the tables kept in {copy} (made for other chain settings)", context.progress)
            return
        with isolated_rng():
            table = get_item_table(config, context.data, progress=context.progress, split=context.split)
            cf, cf_info = (get_collaborative_table(config, context.config, context.data, context.config.model["hidden"],
                                                   progress=context.progress)
                           if config.needs_alignment else (None, None))
        info = {"chain_key": key, "variant": config.variant, "table": table.provenance, "collaborative": cf_info}
        save_tables(copy, table.matrix, cf, info)

    def status(self, context: RecipeContext) -> list[StageStatus]:
        config = llmemb_config(context)
        prompts = item_prompts(config, context.data)
        location = locate_encoder(config.encoder)
        pairs = training_pairs(config, prompts, context.split)
        out = []
        if config.needs_scft:
            folder = scft_folder(config, prompts, location, pairs)
            if artifacts.is_complete(folder):
                out.append(StageStatus("scft", StageState.DONE, str(folder)))
            elif (folder / "state.pt").is_file():
                out.append(StageStatus("scft", StageState.PARTIAL, str(folder), "killed: resumes from its checkpoint"))
            else:
                out.append(StageStatus("scft", StageState.MISSING, str(folder)))
        else:
            out.append(StageStatus("scft", StageState.SKIPPED, note=f"variant '{config.variant}' uses the untuned encoder"))
        folder = table_folder(config, prompts, location, pairs)
        out.append(StageStatus("item_table", StageState.DONE if artifacts.is_complete(folder) else StageState.MISSING,
                               str(folder)))
        if not config.needs_alignment:
            out.append(StageStatus("collaborative_run", StageState.SKIPPED, note=f"variant '{config.variant}' does not align"))
        else:
            folder, key, reused = reference_run(config, context.config, context.data.data_hash,
                                                context.config.model["hidden"])
            stage = run_status("collaborative_run", folder)
            if key is None or reused:
                note = "given (embedding.reference.run)" if key is None else "the recorded id run of these settings"
                stage = StageStatus(stage.name, stage.state, stage.where, note)
            out.append(stage)
        final = run_status("rat_run", context.run_dir)
        key = chain_key(config, context.data, context.config.model["hidden"], context.config, context.split)
        kept = read_tables(Path(context.run_dir) / RUN_SUBDIR, key) is not None
        out.append(StageStatus(final.name, final.state, final.where,
                               final.note or ("tables kept in the run" if kept else "tables not copied into the run yet")))
        return out
