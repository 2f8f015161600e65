"""The GER state a run folder holds (``<run>/ger/``): what the recipe writes and the embedding reads.

``state.npz`` (raw and z-scored item scores, the missing-text mask, the reduced base table, its PCA
components, user priors) and ``meta.json`` (the attribute set, scorer statistics, the base run, PCA
variance, counts, the fingerprint of the settings that made them). ``meta.json`` is written last: the
pair is trusted only when it is there and its fingerprint matches.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np

from lucidrec.embeddings.ger.attributes import AttributeSet, parse_attributes
from lucidrec.embeddings.ger.config import ACCEPTANCE_FIELDS, TUNING_FIELDS, GERConfig, flat_settings
from lucidrec.files import atomic_savez_compressed, read_json, write_json_atomic

STATE_DIR = "ger"
STATE_VERSION = 2


def fingerprint(config: GERConfig, data_hash: str, dim: int) -> str:
    """What the state depends on: the GER settings, the data and the width."""
    # The tune_* settings count only when tuning is on: runs from before the option keep their fingerprint.
    excluded = set(ACCEPTANCE_FIELDS) | (set() if config.tuning.enabled else set(TUNING_FIELDS))
    # The flat names of the settings: states made before the stage sections keep their fingerprint.
    values = {name: value for name, value in flat_settings(config).items() if name not in excluded}
    payload = {"config": values, "data": data_hash, "dim": dim, "v": STATE_VERSION}
    return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]


def read_state(folder: Path, expected: str):
    """``(arrays, meta)`` of the state in ``folder`` when its fingerprint is ``expected``; else None."""
    state, meta = Path(folder) / "state.npz", Path(folder) / "meta.json"
    if not (state.is_file() and meta.is_file()):
        return None
    info = read_json(meta)
    if info.get("fingerprint") != expected:
        return None
    with np.load(state) as arrays:
        return {k: arrays[k] for k in arrays.files}, info


def write_state(folder: Path, arrays: dict, meta: dict) -> None:
    # meta.json last: read_state trusts the pair only when meta.json is there and matches.
    atomic_savez_compressed(Path(folder) / "state.npz", **arrays)
    write_json_atomic(Path(folder) / "meta.json", meta)


def attribute_set_of(meta: dict) -> AttributeSet:
    stored = dict(meta["attributes"])
    return parse_attributes(stored, stored.pop("source", None) or "<run>")
