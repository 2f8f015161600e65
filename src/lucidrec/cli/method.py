"""``lucidrec method``: the stages of a method's recipe for a run (done, partial, missing)."""

from __future__ import annotations

import json
from pathlib import Path

import typer

from lucidrec.cli._common import guarded

app = typer.Typer(help="Method recipes: which stages of a run are done, partly done (resumable) or missing.",
                  no_args_is_help=True)


@app.command("status")
@guarded
def status(
    run: Path = typer.Argument(..., help="Run folder (its config.json names the method through the embedding)."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
):
    """Each stage of the run's recipe, in order, with where its artifact is."""
    from lucidrec.methods import status as recipe_status

    stages = recipe_status(run)
    if as_json:
        typer.echo(json.dumps([{"stage": s.name, "state": s.state.value, "where": s.where, "note": s.note}
                               for s in stages], indent=2))
        return
    width = max(len(s.name) for s in stages)
    for stage in stages:
        line = f"{stage.name:<{width}}  {stage.state.value:<10}"
        if stage.where:
            line += f"  {stage.where}"
        if stage.note:
            line += f"  ({stage.note})"
        typer.echo(line)
