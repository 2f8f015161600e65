"""Writing evaluation outputs: ``metrics.json`` (flat keys + config + data hash) and per-user ranks."""

from __future__ import annotations

from pathlib import Path

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


def read_metrics(run: Path) -> dict:
    return read_json(Path(run) / "metrics.json")


def summary_table(metrics: dict[str, float], prefix: str, names=("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr")) -> str:
    return "  ".join(f"{n}={metrics[f'{prefix}/{n}']:.4f}" for n in names if f"{prefix}/{n}" in metrics)
