"""``lucidrec compare``: paired significance between runs, and mean ± std over seeds."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import numpy as np
import typer

from lucidrec.cli._common import guarded


def _per_user(run: Path, protocol: str, group: str | None, ks=(5, 10, 20)):
    """Users, per-user metrics and (with ``group``) the group's mask, from a run's ``ranks_test.npz``."""
    from lucidrec.eval.metrics import per_user_metrics
    from lucidrec.eval.report import read_per_user

    users, ranks, groups = read_per_user(run)
    path = run / "ranks_test.npz"
    if protocol not in ranks:
        raise FileNotFoundError(f"{path}: no '{protocol}' ranks (has: {', '.join(ranks)})")
    mask = None
    if group is not None:
        if not groups:
            # Runs evaluated before the masks were stored: one re-evaluation writes them, weights unchanged.
            raise FileNotFoundError(f"{path}: no group masks (the run was evaluated before they were stored; "
                                    f"`lucidrec evaluate --run {run}` adds them)")
        if group not in groups:
            raise typer.BadParameter(f"unknown --group {group}; valid: {', '.join(groups)}")
        mask = groups[group]
    return users, per_user_metrics(ranks[protocol], ks), mask


@guarded
def compare(
    baseline: Path = typer.Argument(..., help="Run folder (or evaluate --out folder) of the reference model."),
    candidates: list[Path] = typer.Argument(..., help="Run folders to compare against it."),
    metric: list[str] = typer.Option(["ndcg@10", "recall@10", "mrr"], "--metric", metavar="<name>",
                                     help="Per-user metric to test, repeatable (recall@K, ndcg@K, mrr)."),
    protocol: str = typer.Option("full", "--protocol", help="Ranks to compare: full, or full_unmasked / sampled100 (when the runs were evaluated with it)."),
    group: Optional[str] = typer.Option(None, "--group", help="Compare on one user group only: tail or head (by the target's "
                                        "training popularity), cold (at most 3 training interactions), new (new-item splits), short or long "
                                        "(history length), pop_qN, len_qN."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """Paired t-test and Wilcoxon signed-rank on per-user test metrics (same users required)."""
    from lucidrec.eval.stats import paired_test

    users_a, values_a, mask_a = _per_user(baseline, protocol, group)
    unknown = [m for m in metric if m not in values_a]
    if unknown:
        raise typer.BadParameter(f"unknown --metric {', '.join(unknown)}; valid: {', '.join(values_a)}")
    results = {}
    for run in candidates:
        users_b, values_b, mask_b = _per_user(run, protocol, group)
        if not np.array_equal(users_a, users_b):
            raise typer.BadParameter(f"{run} was evaluated on different users than {baseline}")
        if group is not None and not np.array_equal(mask_a, mask_b):
            # Same users but other targets or training counts: the runs were not evaluated on the same split.
            raise typer.BadParameter(f"the '{group}' group of {run} holds other users than that of {baseline}")
        keep = slice(None) if mask_a is None else mask_a
        results[str(run)] = {m: paired_test(values_a[m][keep], values_b[m][keep]) for m in metric}
    if as_json:
        typer.echo(json.dumps(results, indent=2))
        return
    label = f" [{group}]" if group else ""
    disagree = []
    for run, per_metric in results.items():
        for name, r in per_metric.items():
            # A baseline mean of 0 (an id model on held-out items) has no relative change: say so instead of "nan%".
            change = f"{r['relative']:+.1%}" if r["mean_a"] else "baseline 0"
            typer.echo(f"{run}  {name}{label}: {r['mean_a']:.4f} -> {r['mean_b']:.4f} ({change}), "
                       f"paired t {format_p(r['t_pvalue'])}, Wilcoxon {format_p(r['wilcoxon_pvalue'])}, n={r['n']}")
            if (r["t_pvalue"] < ALPHA) != (r["wilcoxon_pvalue"] < ALPHA):
                disagree.append(f"{Path(run).name} {name}")
    if disagree:
        typer.echo(f"\nthe two tests disagree at p < {ALPHA} on: {', '.join(disagree)}. They test different things: the "
                   "paired t-test asks whether the MEAN per-user difference is zero (a few users with large changes "
                   "can dominate it); the Wilcoxon signed-rank test asks whether the differences are centred on zero by "
                   "their ranks, i.e. whether one model is better for more users than the other regardless of by how "
                   "much (users with no difference are left out). A small Wilcoxon p with a large t p means many "
                   "users change a little in one direction while the mean change is not reliably non-zero.")


#: significance level at which the two tests are said to disagree
ALPHA = 0.05
#: p-values below this are printed as a bound: scipy returns 0.0 once they underflow double precision
P_FLOOR = 1e-300


def format_p(p: float) -> str:
    """``p=0.031``, or ``p < 1e-300`` where the computed value underflowed (printed as 0 otherwise)."""
    return f"p < {P_FLOOR:.0e}" if p < P_FLOOR else f"p={p:.2g}"


@guarded
def aggregate(runs: list[Path] = typer.Argument(..., help="Run folders of the same setup with different seeds."),
              prefix: str = typer.Option("test/full", "--prefix", help="Metric keys to aggregate."),
              as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text.")):
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
