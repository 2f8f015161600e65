"""Finished id runs by what they compute, so a method that needs "the id run of these settings" finds one.

``lucidrec train`` (through :func:`lucidrec.methods.train`) records every finished id-embedding run
under ``<cache>/artifacts/runs/<key>.json`` (key = the run's config as a finished run compares it, and
its data hash). LLMEmb's collaborative stage looks its reference run up here before training one. An
entry whose folder moved, lost its metrics or holds another config is ignored.
"""

from __future__ import annotations

from pathlib import Path

from lucidrec.config import validate_config
from lucidrec.files import read_json, write_json_atomic
from lucidrec.methods import artifacts
from lucidrec.train.migrate import saved_run_config
from lucidrec.train.run import RunConfig, finished_identity

INDEX = "runs"


def run_key(config: RunConfig, data_hash: str) -> str:
    values = finished_identity(config.model_dump(mode="json"))
    values["data"].pop("data_dir", None)  # where the files live does not change them (the hash checks)
    return artifacts.content_key({"kind": "run", "config": values, "data_hash": data_hash})


def _entry(config: RunConfig, data_hash: str, root: Path | None) -> Path:
    return Path(root or artifacts.artifacts_root(None)) / INDEX / f"{run_key(config, data_hash)}.json"


def record(config: RunConfig, run: Path, root: Path | None = None) -> None:
    """Remember a finished run (its data.json gives the data hash)."""
    run = Path(run)
    if not ((run / "metrics.json").is_file() and (run / "data.json").is_file()):
        return
    entry = _entry(config, read_json(run / "data.json")["data_hash"], root)
    entry.parent.mkdir(parents=True, exist_ok=True)
    write_json_atomic(entry, {"run": str(run.resolve())})


def find(config: RunConfig, data_hash: str, root: Path | None = None) -> Path | None:
    """A finished run folder of exactly ``config`` on data ``data_hash``, if one was recorded and is intact."""
    entry = _entry(config, data_hash, root)
    if not entry.is_file():
        return None
    run = Path(read_json(entry)["run"])
    if not ((run / "metrics.json").is_file() and (run / "item_table.npy").is_file() and (run / "config.json").is_file()):
        return None
    stored = validate_config(RunConfig, saved_run_config(run), f"{run}/config.json")
    recorded = read_json(run / "data.json").get("data_hash") if (run / "data.json").is_file() else None
    if recorded != data_hash or run_key(stored, data_hash) != run_key(config, data_hash):
        return None
    return run
