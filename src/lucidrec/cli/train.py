"""``lucidrec train``: one run from a config (file, flags, ``--set`` overrides) to a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, guarded


@guarded
def train(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (folder under the data directory)."),
    model: Optional[str] = typer.Option(None, "--model", help="Backbone: sasrec, gru4rec, bert4rec or caser."),
    embedding: Optional[str] = typer.Option(None, "--embedding", help="Item embedding source: id, frozen, ..."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with the sections data, model, embedding, train, eval."),
    overrides: list[str] = typer.Option([], "--set", help="Override any key, e.g. --set train.lr=0.002 --set model.hidden=128."),
    out: Path = typer.Option(..., "--out", help="Run folder to create (or to continue with --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint, or extend a "
                                "run with a larger train.epochs or train.patience (recorded in config_history.jsonl)."),
    data_dir: Optional[Path] = DataDirOption,
):
    """Train a backbone, keep the best validation epoch, and evaluate it on the test split."""
    from lucidrec.eval.report import summary_table
    from lucidrec.train.run import build_config, train_run

    base: dict = {}
    if dataset:
        base.setdefault("data", {})["dataset"] = dataset
    if data_dir:
        base.setdefault("data", {})["data_dir"] = str(data_dir)
    if model:
        base["model"] = {"name": model}
    if embedding:
        base["embedding"] = {"name": embedding}
    run_config = build_config(base, config, overrides)
    result = train_run(run_config, out, resume=resume)
    if result.get("status") != "done" or "test/full/ndcg@10" not in result:
        return
    typer.echo(f"{run_config.data.dataset} {run_config.model['name']}/{run_config.embedding['name']}: "
               f"{summary_table(result, 'test/full')}")
    typer.echo(f"wrote {out / 'metrics.json'}")
