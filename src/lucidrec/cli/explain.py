"""``lucidrec explain``: a run's top-k items for one user with its explainer's reasons (GER: exact attribute contributions)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import guarded


@guarded
def explain(
    run: Path = typer.Option(..., "--run", help="Run folder of an explainable run (trained with --embedding ger or lane)."),
    user: str = typer.Option(..., "--user", help="User id as in the dataset."),
    k: int = typer.Option(10, "--k", min=1, help="How many items to recommend and explain."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
    plot: Optional[Path] = typer.Option(None, "--plot", help="Write a PNG: user profile, item profiles, contributions."),
    check: bool = typer.Option(False, "--check", help="Faithfulness check: zero each item's top attribute and re-score."),
    holdout: bool = typer.Option(False, "--holdout", help="Explain from the test-time history (the last item held out)."),
):
    """Top-k items with the reasons the run's explainer gives (GER: per-attribute contributions, score = guided block + rest, exactly; LANE: the preferences with the attention weights the score used, and a chain-of-thought text)."""
    from lucidrec.explain import explainer_for

    explainer = explainer_for(run)
    result = explainer.explain(run, user, k=k, holdout=holdout, check=check)
    if plot is not None:
        explainer.plot(result, plot)
    if as_json:
        payload = dict(result.payload)
        if plot is not None:
            payload["plot"] = str(plot)
        typer.echo(json.dumps(payload, indent=2))
    else:
        typer.echo(result.text)
        if plot is not None:
            typer.echo(f"wrote {plot}")
    if check and not result.check["ok"]:
        raise typer.Exit(1)
