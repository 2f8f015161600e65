"""``lucidrec train``: one run from a config (file, flags, ``--set`` overrides) to a run folder."""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded
from lucidrec.embeddings import EMBEDDINGS
from lucidrec.models import BACKBONES
from lucidrec.train.presets import preset_names
from lucidrec.train.run import RunConfig

_DEFAULTS = RunConfig()
DEFAULT_DATASET, DEFAULT_MODEL, DEFAULT_EMBEDDING = (_DEFAULTS.data.dataset, _DEFAULTS.model["name"],
                                                     _DEFAULTS.embedding["name"])

#: (section, key, flag) of the choices a run reports when it falls back to their default
_NAMED_CHOICES = (("data", "dataset", "--dataset"), ("model", "name", "--model"), ("embedding", "name", "--embedding"))


@guarded
def train(
    dataset: Optional[str] = typer.Option(None, "--dataset", show_default=False,
                                          help=f"Dataset name (folder under the data directory) [default: {DEFAULT_DATASET}, "
                                               "or the --config file's]."),
    model: Optional[str] = choice_option(None, "--model", kind="backbone", choices=BACKBONES.names(), show_default=False,
                                                 help=f"Backbone [default: {DEFAULT_MODEL}, or the --config file's]."),
    embedding: Optional[str] = choice_option(None, "--embedding", kind="item embedding", choices=EMBEDDINGS.names(),
                                             show_default=False,
                                                      help=f"Item embedding source [default: {DEFAULT_EMBEDDING}, or the "
                                                           "--config file's]."),
    config: Optional[Path] = typer.Option(None, "--config", help="TOML file with the sections data, model, embedding, train, eval."),
    preset: Optional[str] = choice_option(None, "--preset", kind="preset", choices=preset_names(), show_default=False,
                                          help="Named recipe shipped with lucidrec; --config, flags and --set apply on top."),
    overrides: list[str] = typer.Option([], "--set", show_default=False, metavar="KEY=VALUE",
                                        help="Override any key, e.g. --set train.lr=0.002 --set model.hidden=128 (repeatable)."),
    out: Path = typer.Option(..., "--out", help="Run folder to create (or to continue with --resume)."),
    resume: bool = typer.Option(False, "--resume", help="Continue a killed run from its last checkpoint, or extend a "
                                "run with a larger train.epochs or train.patience (recorded in config_history.jsonl)."),
    data_dir: Optional[Path] = DataDirOption,
):
    """Train a backbone, keep the best validation epoch, and evaluate it on the test split."""
    from lucidrec.config import load_toml
    from lucidrec.eval.report import summary_table
    from lucidrec.methods import train as train_method
    from lucidrec.train.run import build_config
    from lucidrec.train.presets import load_preset

    base: dict = {}
    if dataset:
        base.setdefault("data", {})["dataset"] = dataset
    if data_dir:
        base.setdefault("data", {})["data_dir"] = str(data_dir)
    if model:
        base["model"] = {"name": model}
    if embedding:
        base["embedding"] = {"name": embedding}
    run_config = build_config(base, config, overrides, preset)
    file_values = load_preset(preset) if preset else {}
    if config:
        file_values = {**file_values, **{k: {**file_values.get(k, {}), **v} if isinstance(v, dict) else v
                                         for k, v in load_toml(config).items()}}
    defaulted = _defaulted(base, file_values, overrides)
    if defaulted:
        chosen = {"--dataset": run_config.data.dataset, "--model": run_config.model["name"],
                  "--embedding": run_config.embedding["name"]}
        typer.echo("using defaults: " + ", ".join(f"{flag.lstrip('-')} {chosen[flag]}" for flag in defaulted)
                   + f" (choose with {', '.join(defaulted)})")
    result = train_method(run_config, out, resume=resume)  # a method's recipe first (llmemb, ger)
    if result.get("status") != "done" or "test/full/ndcg@10" not in result:
        return
    typer.echo(f"{run_config.data.dataset} {run_config.model['name']}/{run_config.embedding['name']}: "
               f"{summary_table(result, 'test/full')}")
    typer.echo(f"wrote {out / 'metrics.json'}")


def _defaulted(flags: dict, config_file: dict, overrides: list[str]) -> list[str]:
    """The flags of :data:`_NAMED_CHOICES` given neither as a flag, in the config file, nor by --set."""
    set_keys = {item.split("=", 1)[0].strip() for item in overrides}
    out = []
    for section, key, flag in _NAMED_CHOICES:
        given = [source.get(section) for source in (flags, config_file)]
        if any(isinstance(values, dict) and key in values for values in given) or f"{section}.{key}" in set_keys:
            continue
        out.append(flag)
    return out
