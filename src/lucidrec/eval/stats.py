"""Seeds and significance: mean ± std over runs, and paired tests on per-user metrics."""

from __future__ import annotations

import numpy as np
from scipy import stats


def mean_std(runs: list[dict[str, float]]) -> dict[str, dict[str, float]]:
    """For every numeric key present in all runs: mean and sample standard deviation (ddof=1)."""
    keys = [k for k in runs[0] if all(k in r and isinstance(r[k], (int, float)) for r in runs)]
    out = {}
    for key in keys:
        values = np.array([r[key] for r in runs], dtype=np.float64)
        out[key] = {"mean": float(values.mean()), "std": float(values.std(ddof=1)) if len(values) > 1 else 0.0, "n": len(values)}
    return out


def paired_test(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    """Compare two models on the same users (same order): paired t-test and Wilcoxon signed-rank.

    Returns means, the difference b - a, its relative size, and both two-sided p-values.
    """
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    if a.shape != b.shape:
        raise ValueError(f"paired test needs the same users in the same order (got {a.shape} and {b.shape})")
    diff = b - a
    result = {
        "n": int(len(a)),
        "mean_a": float(a.mean()),
        "mean_b": float(b.mean()),
        "diff": float(diff.mean()),
        "relative": float(diff.mean() / a.mean()) if a.mean() else float("nan"),
    }
    if np.allclose(diff, 0):
        result.update(t_pvalue=1.0, wilcoxon_pvalue=1.0)
    else:
        result["t_pvalue"] = float(stats.ttest_rel(b, a).pvalue)
        result["wilcoxon_pvalue"] = float(stats.wilcoxon(b, a, zero_method="wilcox").pvalue)
    return result
