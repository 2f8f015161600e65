"""``lucidrec report``: result records -> markdown tables, PNG plots and a self-contained HTML page."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import guarded


@guarded
def report(
    results: list[Path] = typer.Argument(..., help="Results folders written by `lucidrec experiment run` (grid records) or the "
                                 "bench measurement scripts (results/measurements)."),
    out: Path = typer.Option(..., "--out", help="Folder for report.md, report.html, summary.json and the plots."),
    baseline: Optional[str] = typer.Option(None, "--baseline", help="Row label to compare with (default: the grid's "
                                           "'baseline'), e.g. sasrec/id or pop."),
    metric: str = typer.Option("ndcg@10", "--metric", help="Metric of the ratios, paired tests, group table and plots."),
    plots: bool = typer.Option(True, "--plots/--no-plots", help="PNG plots (needs matplotlib)."),
):
    """Tables (mean ± std over seeds, ratio and paired tests against the baseline row, per-group columns) and plots;
    measurement records as their own tables."""
    from lucidrec.experiments.report import write_report

    written = write_report(results, out, baseline=baseline, metric=metric, plots=plots)
    for warning in written.warnings:
        typer.echo(f"warning: {warning}", err=True)
    typer.echo(f"wrote {out / 'report.md'}, {out / 'report.html'} and {out / 'summary.json'} "
               f"({len(written.rows)} rows, {len(written.measurements)} measurement records)")
