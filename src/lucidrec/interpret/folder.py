"""The adapter folder: what was trained, on which recommender run and which LM, and its checks.

Files: ``interpret.json`` (config, run and LM identity, user split, status), ``checkpoint.pt``
(resume), ``adapter.pt`` (trained weights), ``log.jsonl``, and after evaluation ``metrics.json``,
``cases.jsonl`` and ``instantiation.jsonl``. A run is identified by the hash of its weights file
and its data hash (not its path: a moved run folder still matches).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lucidrec.config import ConfigError, validate_config
from lucidrec.files import read_json, write_json_atomic
from lucidrec.interpret.config import InterpretConfig

MANIFEST = "interpret.json"
METRICS = "metrics.json"
CASES = "cases.jsonl"
INSTANTIATION = "instantiation.jsonl"

#: Settings that do not change what the adapter learns (how long it may run, how it is evaluated).
NOT_IDENTITY = {"optim": ("max_minutes", "threads", "checkpoint_every"), "evaluation": None}


def weights_file(run: Path) -> Path:
    for name in ("best.pt", "last.pt"):
        if (run / name).is_file():
            return run / name
    raise ConfigError(f"{run}: no trained weights (best.pt or last.pt)")


def run_identity(run: Path) -> dict:
    run = Path(run)
    digest = hashlib.sha1(weights_file(run).read_bytes()).hexdigest()[:16]
    data_hash = read_json(run / "data.json").get("data_hash") if (run / "data.json").is_file() else None
    return {"path": str(run.resolve()), "weights_sha1": digest, "data_hash": data_hash}


def training_identity(config: InterpretConfig) -> dict:
    values = config.model_dump(mode="json")
    for section, keys in NOT_IDENTITY.items():
        if keys is None:
            values.pop(section, None)
        else:
            values[section] = {k: v for k, v in values[section].items() if k not in keys}
    return values


def read_manifest(folder: Path) -> dict:
    path = Path(folder) / MANIFEST
    if not path.is_file():
        raise ConfigError(f"{folder}: not an interpretation folder (no {MANIFEST}); create one with 'lucidrec interpret train'")
    manifest = read_json(path)
    manifest["config"] = validate_config(InterpretConfig, manifest["config"], f"{path}: config")
    return manifest


def same_run(stored: dict, current: dict) -> bool:
    return stored["weights_sha1"] == current["weights_sha1"] and stored["data_hash"] == current["data_hash"]


def check_run(folder: Path, stored: dict, current: dict) -> None:
    if not same_run(stored, current):
        raise ConfigError(f"{folder} holds an adapter trained on the run {stored['path']} (weights {stored['weights_sha1']}, "
                          f"data {stored['data_hash']}), not on {current['path']} (weights {current['weights_sha1']}, "
                          f"data {current['data_hash']})")


def check_lm(folder: Path, stored: str, current: str) -> None:
    if stored != current:
        raise ConfigError(f"{folder} holds an adapter trained for the LM {stored}, not for {current}")


def write_manifest(folder: Path, manifest: dict) -> None:
    payload = dict(manifest)
    if isinstance(payload.get("config"), InterpretConfig):
        payload["config"] = payload["config"].model_dump(mode="json")
    write_json_atomic(Path(folder) / MANIFEST, payload)
