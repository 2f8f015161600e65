"""What the LANE recipe leaves in ``<run>/lane/`` and the ``lane`` embedding reads.

- ``items.npz`` (``vectors`` (n_items+1, d), ``has_title``) + ``items.json`` (encoder, counts, fingerprint);
- ``preferences.npz`` (``vectors`` (n_users, P, d), ``mask``) + ``preferences.json`` (counts, source,
  fingerprint) + ``preferences.jsonl`` (one line per user: id, phrases, where they came from).

Each ``.json`` is written last: a stage is done when it is there and its fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from lucidrec.embeddings.lane.config import ACCEPTANCE_FIELDS, MODEL_FIELDS, LaneConfig
from lucidrec.files import atomic_savez_compressed, read_json, write_json_atomic

STATE_DIR = "lane"
STATE_VERSION = 1
ITEMS, PREFERENCES = "items", "preferences"
PREFERENCE_FIELDS = ("source", "llm", "recorded_path", "n_preferences", "max_history", "max_reasks", "max_tokens",
                     "encoder")


def _hash(payload) -> str:
    return hashlib.sha1(json.dumps(payload, sort_keys=True, default=str).encode()).hexdigest()[:16]


def items_fingerprint(config: LaneConfig, data_hash: str) -> str:
    return _hash({"encoder": config.encoder, "data": data_hash, "v": STATE_VERSION})


def preferences_fingerprint(config: LaneConfig, data_hash: str, split_info: dict) -> str:
    """The preference settings, the data and the split (preferences read the training part only)."""
    values = config.model_dump(mode="json", exclude=set(ACCEPTANCE_FIELDS) | set(MODEL_FIELDS))
    values = {k: values[k] for k in PREFERENCE_FIELDS}
    return _hash({"config": values, "data": data_hash, "split": split_info, "v": STATE_VERSION})


def read_stage(folder: Path, name: str, expected: str) -> tuple[dict, dict] | None:
    """``(arrays, meta)`` of stage ``name`` in ``folder`` when its fingerprint is ``expected``; else None."""
    arrays_path, meta_path = Path(folder) / f"{name}.npz", Path(folder) / f"{name}.json"
    if not (arrays_path.is_file() and meta_path.is_file()):
        return None
    meta = read_json(meta_path)
    if meta.get("fingerprint") != expected:
        return None
    with np.load(arrays_path) as arrays:
        return {k: arrays[k] for k in arrays.files}, meta


def stage_meta(folder: Path, name: str) -> dict | None:
    path = Path(folder) / f"{name}.json"
    return read_json(path) if path.is_file() else None


def write_stage(folder: Path, name: str, arrays: dict, meta: dict) -> None:
    # The .json last: read_stage trusts the pair only when it is there and matches.
    atomic_savez_compressed(Path(folder) / f"{name}.npz", **arrays)
    write_json_atomic(Path(folder) / f"{name}.json", meta)


def split_identity(split) -> dict:
    """What decides each user's training part (and so what a preference prompt may show)."""
    return {"protocol": split.protocol, "info": split.info, "train_items": int(len(split.train.values))}
