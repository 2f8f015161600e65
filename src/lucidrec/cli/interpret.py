"""``lucidrec interpret``: RecInterpreter, a frozen LM trained (through an adapter) to read a run's states."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import guarded

app = typer.Typer(help="RecInterpreter: let a frozen language model say what a trained recommender's states encode.",
                  no_args_is_help=True)

OverridesOption = typer.Option([], "--set", help="Override a setting, e.g. --set optim.max_steps=500 --set lm.model=DIR.")
RunOption = typer.Option(None, "--run", help="The run the adapter was trained on, if it moved (default: the recorded path).")


@app.command("train")
@guarded
def train(
    run: Path = typer.Option(..., "--run", help="A trained run folder (any backbone or embedding)."),
    task: str = typer.Option("residual", "--task", help="residual (name the appended item) or recovery (list the last items)."),
    out: Path = typer.Option(..., "--out", help="Adapter folder to create, or to continue after an interruption."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with the sections lm, adapter, examples, optim, evaluation."),
    overrides: list[str] = OverridesOption,
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Train the adapter (the LM and the recommender stay frozen); continues a killed training."""
    from lucidrec.config import apply_overrides, load_toml, validate_config
    from lucidrec.interpret.config import InterpretConfig
    from lucidrec.interpret.pipeline import train as train_interpreter

    values = load_toml(config) if config is not None else {}
    values["task"] = task
    settings = validate_config(InterpretConfig, apply_overrides(values, overrides), "interpret config")
    result = train_interpreter(run, out, settings, progress=progress)
    typer.echo(json.dumps(result, indent=2))
    typer.echo(f"adapter in {out}")


@app.command("evaluate")
@guarded
def evaluate(
    folder: Path = typer.Argument(..., help="Adapter folder written by 'lucidrec interpret train'."),
    run: Optional[Path] = RunOption,
    overrides: list[str] = typer.Option([], "--set", help="Change evaluation settings, e.g. --set evaluation.rank_users=50."),
    progress: bool = typer.Option(True, "--progress/--no-progress"),
):
    """Held-out users: generation and likelihood accuracy, recovery counts, both controls, instantiation."""
    from lucidrec.interpret.pipeline import evaluate as evaluate_interpreter
    from lucidrec.interpret.pipeline import evaluation_settings

    metrics = evaluate_interpreter(folder, run=run, evaluation=evaluation_settings(folder, overrides), progress=progress)
    shown = {k: v for k, v in metrics.items() if not isinstance(v, (dict, list))}
    typer.echo(json.dumps(shown, indent=2))
    typer.echo(f"wrote {folder / 'metrics.json'}")


@app.command("ask")
@guarded
def ask(
    folder: Path = typer.Argument(..., help="Adapter folder written by 'lucidrec interpret train'."),
    user: str = typer.Option(..., "--user", help="User id as in the dataset."),
    run: Optional[Path] = RunOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of text."),
):
    """What the LM says about one user's current state and about the backbone's predicted next item."""
    from lucidrec.interpret.pipeline import ask as ask_interpreter

    answer = ask_interpreter(folder, user, run=run)
    if as_json:
        typer.echo(json.dumps(answer, indent=2))
        return
    held = "held out from" if answer["heldout"] else "used in"
    typer.echo(f"user {answer['user']} ({held} the adapter's training), task {answer['task']}")
    typer.echo(f"prompt: {answer['prompt']}")
    typer.echo(f"current state      -> {answer['current_state']}")
    typer.echo(f"predicted next item -> {answer['predicted_next_item']}")
    typer.echo(f"last item: {answer['last_item']}")
    typer.echo(f"backbone top-10: {'; '.join(answer['backbone_top10'])}")
