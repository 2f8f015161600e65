"""Result records: one small JSON file per finished cell, enough for every table, plot and paired test.

A record holds the cell, its config (without the machine's data folder), the data hash, the flat
metrics, timings, the validation curve and the per-user test ranks and group masks, compressed
(zlib, base64), so reports never need the run folders. Written atomically; a damaged record is named
and skipped with a warning by :func:`read_records`, never silently dropped.
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lucidrec.errors import DataFormatError
from lucidrec.files import numpy_default, read_json, write_json_atomic

log = logging.getLogger(__name__)

FORMAT = 1
SUFFIX = ".json"
#: Settings that say where things are on one machine, not what was computed: left out of records.
MACHINE_KEYS = {"data": ("data_dir",), "train": ("progress", "threads")}
REQUIRED = ("format", "cell", "config", "data_hash", "metrics", "timings", "per_user")
#: The ``kind`` of a measurement record (``lucidrec.experiments.measurements``), which may share a results folder.
KIND_MEASUREMENT = "measurement"


def portable_config(config: dict) -> dict:
    """The config without machine-specific keys (it is compared with the grid's and may be committed)."""
    out = json.loads(json.dumps(config, default=str))
    for section, keys in MACHINE_KEYS.items():
        for key in keys:
            out.get(section, {}).pop(key, None)
    return out


def pack_ints(values: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.asarray(values, dtype="<i4").tobytes(), 9)).decode("ascii")


def unpack_ints(text: str) -> np.ndarray:
    return np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype="<i4").astype(np.int64)


def pack_mask(mask: np.ndarray) -> str:
    return base64.b64encode(zlib.compress(np.packbits(np.asarray(mask, dtype=bool)).tobytes(), 9)).decode("ascii")


def unpack_mask(text: str, n: int) -> np.ndarray:
    return np.unpackbits(np.frombuffer(zlib.decompress(base64.b64decode(text)), dtype=np.uint8), count=n).astype(bool)


def users_digest(users: np.ndarray) -> str:
    """Paired tests need the same users in the same order: the record keeps this digest, not the ids."""
    return hashlib.sha256(np.asarray(users, dtype="<i8").tobytes()).hexdigest()[:16]


def validation_curve(run_dir: Path) -> list[dict]:
    """One entry per epoch from ``log.jsonl`` (the last line of an epoch, so a resumed run counts once)."""
    path = Path(run_dir) / "log.jsonl"
    if not path.is_file():
        return []
    epochs: dict[int, dict] = {}
    for line in path.read_text().splitlines():
        try:
            entry = json.loads(line)
            epochs[int(entry["epoch"])] = {"epoch": int(entry["epoch"]), "loss": entry.get("loss"),
                                           "valid_ndcg10": entry.get("valid_ndcg10"), "seconds": entry.get("seconds")}
        except (json.JSONDecodeError, KeyError, TypeError, ValueError):
            continue  # a line cut off by a kill: the trainer drops it too
    return [epochs[e] for e in sorted(epochs)]


def machine() -> dict:
    """What the timings were measured on (no host name: records may be committed)."""
    import platform

    import torch

    from lucidrec import __version__

    return {"cpus": os.cpu_count(), "processor": platform.processor() or platform.machine(),
            "python": platform.python_version(), "torch": torch.__version__, "lucidrec": __version__,
            "torch_threads": torch.get_num_threads()}


def build_record(cell: dict, run_dir: Path, cell_seconds: float, earlier_seconds: float = 0.0) -> dict:
    """The record of a finished run folder (``metrics.json`` and ``ranks_test.npz`` must exist).

    ``cell_seconds``: the wall time of this call; ``earlier_seconds``: the training time of the epochs an earlier
    call left in the folder (a resumed or reused run). The record's ``cell_seconds`` is their sum, what the cell
    costs from scratch (and what the progress estimate expects of the next cell of its row); a resumed cell also
    records ``cell_seconds_this_call``."""
    from lucidrec.eval.report import read_metrics, read_per_user

    stored = read_metrics(run_dir)
    metrics = {k: v for k, v in stored.items() if "/" in k and isinstance(v, (int, float))}
    users, ranks, groups = read_per_user(run_dir)
    timing_keys = ("seconds_per_epoch", "sequences_per_second", "training_seconds_this_call", "eval_seconds",
                   "best_epoch", "epochs_run", "seconds")
    timings = {k: stored[k] for k in timing_keys if stored.get(k) is not None}
    curve = validation_curve(run_dir)
    if curve:
        timings["training_seconds"] = float(sum(e["seconds"] or 0.0 for e in curve))
    timings["cell_seconds"] = cell_seconds + earlier_seconds
    if earlier_seconds:
        timings["cell_seconds_this_call"] = cell_seconds
    return {
        "format": FORMAT,
        "cell": cell,
        "config": portable_config(stored.get("config", {})),
        "data_hash": stored.get("data_hash"),
        "metrics": metrics,
        "timings": timings,
        "curve": curve,
        "machine": machine(),
        "per_user": {"n": int(len(users)), "users": users_digest(users),
                     "ranks": {name: pack_ints(values) for name, values in sorted(ranks.items())},
                     "groups": {name: pack_mask(mask) for name, mask in sorted(groups.items())}},
    }


def write_record(results_dir: Path, slug: str, record: dict) -> Path:
    return write_json_atomic(Path(results_dir) / f"{slug}{SUFFIX}", record, default=numpy_default)


@dataclass
class Record:
    path: Path
    data: dict

    @property
    def cell(self) -> dict:
        return self.data["cell"]

    def ranks(self, protocol: str = "full") -> np.ndarray:
        return unpack_ints(self.data["per_user"]["ranks"][protocol])

    def groups(self) -> dict[str, np.ndarray]:
        n = self.data["per_user"]["n"]
        return {name: unpack_mask(text, n) for name, text in self.data["per_user"]["groups"].items()}


def load_record(path: Path) -> Record:
    """One record, checked: a DataFormatError names the file and what is wrong."""
    data = read_json(path)
    if not isinstance(data, dict):
        raise DataFormatError(path, "not a result record (a JSON object is expected)")
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise DataFormatError(path, f"not a result record (missing {', '.join(missing)})")
    if data["format"] != FORMAT:
        raise DataFormatError(path, f"record format {data['format']!r}; this lucidrec reads format {FORMAT}", field="format")
    record = Record(Path(path), data)
    try:
        n = data["per_user"]["n"]
        for name in data["per_user"]["ranks"]:
            if len(record.ranks(name)) != n:
                raise ValueError(f"{name} ranks hold {len(record.ranks(name))} users, not {n}")
        record.groups()
    except (KeyError, TypeError, ValueError, zlib.error) as exc:
        raise DataFormatError(path, f"damaged per-user data ({exc})", field="per_user") from None
    return record


def record_paths(results_dir: Path) -> list[Path]:
    return sorted(p for p in Path(results_dir).glob(f"*{SUFFIX}") if p.name != GRID_FILE)


def is_measurement(data) -> bool:
    return isinstance(data, dict) and data.get("kind") == KIND_MEASUREMENT


def _is_measurement_file(path: Path) -> bool:
    try:
        return is_measurement(read_json(path))
    except (DataFormatError, UnicodeDecodeError):
        return False


def read_records(results_dirs: list[Path]) -> tuple[list[Record], list[str]]:
    """Every record of the folders, and one warning per record that could not be read (it is skipped).
    Measurement records are left to ``lucidrec.experiments.measurements.read_measurements``."""
    records, skipped = [], []
    for folder in results_dirs:
        folder = Path(folder)
        if not folder.is_dir():
            raise FileNotFoundError(f"{folder}: no such results folder")
        for path in record_paths(folder):
            try:
                records.append(load_record(path))
            except (DataFormatError, UnicodeDecodeError) as exc:
                if _is_measurement_file(path):
                    continue
                message = f"skipped damaged record {exc}"
                log.warning(message)
                skipped.append(message)
    return records, skipped


#: The checked grid, written next to the records (its baseline and name are what the report reads).
GRID_FILE = "grid.json"
