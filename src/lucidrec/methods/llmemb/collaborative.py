"""E_cf, the collaborative item table the RAT alignment pulls towards: a trained id-based SASRec's items.

Either a given run folder (``collaborative_run``; its ``item_table.npy``), or the id baseline of the run:
an id-based SASRec (the paper's E_cf model for every backbone) with the run's data, evaluation and
training settings and seed (``cf_seed``/``cf_epochs`` override those two), and the run's width, sequence
length and dropout (a SASRec run's whole model section). A finished id run of exactly that config, when
one was recorded (:mod:`lucidrec.methods.run_index`), is used as it is; otherwise the SASRec is trained
as an ordinary run folder cached under ``<artifacts>/cf/<key>`` (key = its complete config + the data
hash), so every variant of a benchmark cell shares it, and a killed training resumes from its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lucidrec.config import ConfigError, validate_config
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.files import read_json
from lucidrec.methods import artifacts, run_index
from lucidrec.methods.llmemb.table import say, single_process_only
from lucidrec.train import checkpoint
from lucidrec.train.run import RunConfig, train_run


def cf_run_config(run_config: RunConfig, dim: int, config: LLMEmbConfig) -> RunConfig:
    """The id-based SASRec run config behind the alignment target of ``run_config``."""
    train = run_config.train.model_dump()
    train.update(seed=run_config.train.seed if config.reference.seed is None else config.reference.seed,
                 epochs=config.reference.epochs or run_config.train.epochs)
    if run_config.model["name"] == "sasrec":
        model = dict(run_config.model)
    else:  # the paper's E_cf is a SASRec whatever the backbone: the run's width, length and dropout
        model = {"name": "sasrec", "max_len": run_config.model["max_len"], "dropout": run_config.model["dropout"]}
    values = {
        "data": run_config.data.model_dump(mode="json"),
        "model": {**model, "hidden": dim},
        "embedding": {"name": "id"},
        "train": train,
        "eval": run_config.eval.model_dump(mode="json"),
    }
    return validate_config(RunConfig, values, "llmemb collaborative SASRec config")


def cf_key(cf_config: RunConfig, data_hash: str) -> str:
    payload = cf_config.model_dump(mode="json")
    payload["train"].pop("progress", None)
    payload["data"].pop("data_dir", None)  # where the files live does not change them (the hash checks)
    return artifacts.content_key({"kind": "cf", "config": payload, "data_hash": data_hash})


def cf_folder(config: LLMEmbConfig, run_config: RunConfig, data_hash: str, dim: int) -> tuple[Path, str | None]:
    """``(folder of E_cf's run, its artifact key or None for a given run)``."""
    if config.reference.run:
        return Path(config.reference.run).expanduser(), None
    key = cf_key(cf_run_config(run_config, dim, config), data_hash)
    return artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "cf", key), key


def reference_run(config: LLMEmbConfig, run_config: RunConfig, data_hash: str, dim: int) -> tuple[Path, str | None, bool]:
    """``(E_cf's run folder, its artifact key or None for a given run, whether it is a recorded id run)``."""
    folder, key = cf_folder(config, run_config, data_hash, dim)
    if key is not None:
        recorded = run_index.find(cf_run_config(run_config, dim, config), data_hash)
        if recorded is not None:
            return recorded, key, True
    return folder, key, False


def training_seconds(run: Path) -> float | None:
    """Training seconds of a run from its log.jsonl (last entry per epoch, so resumed runs count once)."""
    log = Path(run) / "log.jsonl"
    if not log.is_file():
        return None
    per_epoch = {}
    for line in log.read_text().splitlines():
        if line.strip():
            entry = json.loads(line)
            per_epoch[entry["epoch"]] = entry.get("seconds", 0.0)
    return float(sum(per_epoch.values()))


def get_collaborative_table(config: LLMEmbConfig, run_config: RunConfig, data, dim: int, *,
                            progress: bool = True) -> tuple[np.ndarray, dict]:
    """``(E_cf rows 0..n_items, info)``; trains (or resumes, or reuses) the SASRec when none is given."""
    folder, key, reused = reference_run(config, run_config, data.data_hash, dim)
    cf_config = cf_run_config(run_config, dim, config) if key is not None else None
    if cf_config is None:  # a given run: it must have been trained on these data
        recorded = folder / "data.json"
        stored = read_json(recorded).get("data_hash") if recorded.is_file() else None
        if stored and stored != data.data_hash:
            raise ConfigError(f"llmemb: collaborative_run {folder} was trained on other data "
                              f"(hash {stored}, this run {data.data_hash})")
    elif not reused:
        with artifacts.locked(folder):
            if not (folder / "metrics.json").is_file():
                single_process_only("the collaborative SASRec")
                say(f"training the id-based SASRec for E_cf (hidden {dim}, {cf_config.train.epochs} epochs) -> {folder}",
                    progress)
                train_run(cf_config, folder, resume=checkpoint.exists(folder))
            else:
                say(f"reusing collaborative SASRec {folder}", progress)
    path = folder / "item_table.npy"
    if not path.is_file():
        raise ConfigError(f"llmemb: {folder} holds no item_table.npy (not a finished run folder)")
    table = np.load(path).astype(np.float32)
    if table.shape != (data.n_items + 1, dim):
        raise ConfigError(f"llmemb: E_cf from {folder} has shape {table.shape}, expected ({data.n_items + 1}, {dim}): "
                          "train the collaborative SASRec on the same data with model.hidden equal to this backbone's")
    if cf_config is not None:
        settings = cf_config.model_dump(mode="json")
        summary = (f"id SASRec, hidden {settings['model']['hidden']}, max_len {settings['model']['max_len']}, dropout "
                   f"{settings['model']['dropout']}, seed {settings['train']['seed']}, {settings['train']['epochs']} epochs")
        say(f"E_cf = the items of {'the recorded id run' if reused else 'the id run'} {folder} ({summary})", progress)
    info = {"run": str(folder), "auto_trained": cf_config is not None and not reused, "reused_id_run": reused, "key": key,
            "table_digest": artifacts.file_digest(path), "training_seconds": training_seconds(folder)}
    if cf_config is not None:
        info["config"] = {"model": settings["model"], "seed": settings["train"]["seed"],
                          "epochs": settings["train"]["epochs"]}
    return table, info
