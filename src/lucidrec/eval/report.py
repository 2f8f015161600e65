"""Writing evaluation outputs: ``metrics.json`` (flat keys + config + data hash) and per-user ranks."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.eval.evaluator import EvalResult
from lucidrec.files import atomic_savez_compressed, numpy_default, read_json, write_json_atomic


def write_metrics(out: Path, metrics: dict[str, float], **context) -> Path:
    """``metrics.json``: the flat metric keys first, then context entries (config, data_hash, ...)."""
    # Written last and atomically: its presence marks a finished run (``train_or_reuse``).
    return write_json_atomic(out / "metrics.json", {**metrics, **context}, default=numpy_default)


def write_per_user(out: Path, part: str, result: EvalResult) -> Path:
    """Per-user ranks and group masks (tail, head, ...), for paired significance tests between runs on all
    users or on one group (``lucidrec compare --group``)."""
    return atomic_savez_compressed(out / f"ranks_{part}.npz", users=result.users,
                                   **{f"rank_{k}": v for k, v in result.ranks.items()},
                                   **{f"group_{k}": v for k, v in result.groups.items()})


def read_per_user(run: Path, part: str = "test") -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """What ``write_per_user`` stored: the users, their ranks per protocol and the group masks (empty for runs
    evaluated before the masks were stored)."""
    path = Path(run) / f"ranks_{part}.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-user ranks (train or evaluate the run first)")
    with np.load(path) as data:
        ranks = {name.removeprefix("rank_"): data[name] for name in data.files if name.startswith("rank_")}
        groups = {name.removeprefix("group_"): data[name] for name in data.files if name.startswith("group_")}
        return data["users"], ranks, groups


def read_metrics(run: Path) -> dict:
    return read_json(Path(run) / "metrics.json")


def summary_table(metrics: dict[str, float], prefix: str, names=("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr")) -> str:
    return "  ".join(f"{n}={metrics[f'{prefix}/{n}']:.4f}" for n in names if f"{prefix}/{n}" in metrics)
