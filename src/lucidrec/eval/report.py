"""Writing evaluation outputs: ``metrics.json`` (flat keys + config + data hash) and per-user ranks."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from lucidrec.eval.evaluator import EvalResult


def write_metrics(out: Path, metrics: dict[str, float], **context) -> Path:
    """``metrics.json``: the flat metric keys first, then context entries (config, data_hash, ...)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / "metrics.json"
    payload = {**metrics, **context}
    path.write_text(json.dumps(payload, indent=2, default=_plain) + "\n")
    return path


def write_per_user(out: Path, part: str, result: EvalResult) -> Path:
    """Per-user ranks, for paired significance tests between runs (``lucidrec compare``)."""
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"ranks_{part}.npz"
    np.savez_compressed(path, users=result.users, **{f"rank_{k}": v for k, v in result.ranks.items()})
    return path


def read_metrics(run: Path) -> dict:
    return json.loads((Path(run) / "metrics.json").read_text())


def _plain(value):
    if isinstance(value, (np.integer,)):
        return int(value)
    if isinstance(value, (np.floating,)):
        return float(value)
    if isinstance(value, Path):
        return str(value)
    raise TypeError(type(value).__name__)


def summary_table(metrics: dict[str, float], prefix: str, names=("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr")) -> str:
    return "  ".join(f"{n}={metrics[f'{prefix}/{n}']:.4f}" for n in names if f"{prefix}/{n}" in metrics)
