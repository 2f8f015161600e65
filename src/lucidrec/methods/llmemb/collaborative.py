"""E_cf, the collaborative item table the RAT alignment pulls towards: a trained id-based SASRec's items.

Either a given run folder (``collaborative_run``; its ``item_table.npy``), or an id-based SASRec
trained here with the run's data config and training settings, width = the backbone's hidden
size, seed ``cf_seed``. That run is an ordinary run folder cached under ``<artifacts>/cf/<key>``
(key = its complete config + the data hash), so every seed and backbone of a benchmark shares it,
and a killed training resumes from its checkpoint.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lucidrec.config import ConfigError, validate_config
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.files import read_json
from lucidrec.methods import artifacts
from lucidrec.methods.llmemb.table import say, single_process_only
from lucidrec.train import checkpoint
from lucidrec.train.run import RunConfig, train_run


def cf_run_config(run_config: RunConfig, dim: int, config: LLMEmbConfig) -> RunConfig:
    """The id-based SASRec run config behind the alignment target of ``run_config``."""
    train = run_config.train.model_dump()
    train.update(seed=config.cf_seed, epochs=config.cf_epochs or run_config.train.epochs)
    values = {
        "data": run_config.data.model_dump(mode="json"),
        "model": {"name": "sasrec", "hidden": dim, "max_len": run_config.model.get("max_len", 200)},
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
    if config.collaborative_run:
        return Path(config.collaborative_run).expanduser(), None
    key = cf_key(cf_run_config(run_config, dim, config), data_hash)
    return artifacts.artifact_dir(artifacts.artifacts_root(config.artifacts_dir), "cf", key), key


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
    folder, key = cf_folder(config, run_config, data.data_hash, dim)
    auto = key is not None
    if not auto:
        recorded = folder / "data.json"
        if recorded.is_file():
            stored = read_json(recorded).get("data_hash")
            if stored and stored != data.data_hash:
                raise ConfigError(f"llmemb: collaborative_run {folder} was trained on other data "
                                  f"(hash {stored}, this run {data.data_hash})")
    else:
        cf_config = cf_run_config(run_config, dim, config)
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
    info = {"run": str(folder), "auto_trained": auto, "key": key, "table_digest": artifacts.file_digest(path),
            "training_seconds": training_seconds(folder)}
    return table, info
