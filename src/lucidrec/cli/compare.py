"""``lucidrec compare``: paired significance between runs, and mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import typer

from lucidrec.cli._common import guarded


def _per_user(run: Path, protocol: str, ks=(5, 10, 20)):
    from lucidrec.eval.metrics import per_user_metrics

    path = run / "ranks_test.npz"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no per-user ranks (train or evaluate the run first)")
    data = np.load(path)
    key = f"rank_{protocol}"
    if key not in data:
        raise FileNotFoundError(f"{path}: no '{protocol}' ranks (has: {', '.join(k[5:] for k in data.files if k.startswith('rank_'))})")
    return data["users"], per_user_metrics(data[key], ks)


@guarded
def compare(
    baseline: Path = typer.Argument(..., help="Run folder (or evaluate --out folder) of the reference model."),
    candidates: list[Path] = typer.Argument(..., help="Run folders to compare against it."),
    metric: list[str] = typer.Option(["ndcg@10", "recall@10", "mrr"], "--metric"),
    protocol: str = typer.Option("full", "--protocol", help="Ranks to compare: full, or full_unmasked / sampled100 (when the runs were evaluated with it)."),
    as_json: bool = typer.Option(False, "--json"),
):
    """Paired t-test and Wilcoxon signed-rank on per-user test metrics (same users required)."""
    from lucidrec.eval.stats import paired_test

    users_a, values_a = _per_user(baseline, protocol)
    unknown = [m for m in metric if m not in values_a]
    if unknown:
        raise typer.BadParameter(f"unknown --metric {', '.join(unknown)}; valid: {', '.join(values_a)}")
    results = {}
    for run in candidates:
        users_b, values_b = _per_user(run, protocol)
        if not np.array_equal(users_a, users_b):
            raise typer.BadParameter(f"{run} was evaluated on different users than {baseline}")
        results[str(run)] = {m: paired_test(values_a[m], values_b[m]) for m in metric}
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    for run, per_metric in results.items():
        for name, r in per_metric.items():
            typer.echo(f"{run}  {name}: {r['mean_a']:.4f} -> {r['mean_b']:.4f} ({r['relative']:+.1%}), "
                       f"paired t p={r['t_pvalue']:.2g}, Wilcoxon p={r['wilcoxon_pvalue']:.2g}, n={r['n']}")


@guarded
def aggregate(runs: list[Path] = typer.Argument(..., help="Run folders of the same setup with different seeds."),
              prefix: str = typer.Option("test/full", "--prefix"), as_json: bool = typer.Option(False, "--json")):
    """Mean ± sample std of every metric over runs (e.g. seeds)."""
    from lucidrec.eval.report import read_metrics
    from lucidrec.eval.stats import mean_std

    table = mean_std([{k: v for k, v in read_metrics(r).items() if k.startswith(prefix.rstrip('/') + '/')} for r in runs])
    if as_json:
        typer.echo(json.dumps(table, indent=2))
        return
    for key, value in table.items():
        if "/n_users" not in key:
            typer.echo(f"{key:<40} {value['mean']:.4f} ± {value['std']:.4f} (n={value['n']})")
