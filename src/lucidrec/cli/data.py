"""``lucidrec data``: inspect, convert and download datasets."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import (
    DataDirOption, DedupOption, KCoreOption, MinHistoryOption, MinItemOption, MinRatingOption, MinUserOption,
    SinglePassOption, SkipBadLinesOption, guarded, prepare_options,
)

app = typer.Typer(help="Inspect, download and convert datasets.", no_args_is_help=True)


@app.command("info")
@guarded
def info(
    name: str = typer.Argument(..., help="Dataset folder under the data directory, or a path."),
    data_dir: Optional[Path] = DataDirOption,
    as_json: bool = typer.Option(False, "--json", help="Print JSON instead of a table."),
    skip_bad_lines: bool = SkipBadLinesOption,
    min_rating: Optional[float] = MinRatingOption,
    k_core: Optional[int] = KCoreOption,
    min_user: Optional[int] = MinUserOption,
    min_item: Optional[int] = MinItemOption,
    single_pass: bool = SinglePassOption,
    dedup: str = DedupOption,
    min_history: Optional[int] = MinHistoryOption,
):
    """Users, items, interactions, history lengths and text coverage, counted as stored.

    Filters are opt-in; when given, the statistics after filtering and what each step removed are
    reported too.
    """
    from lucidrec.data import load_dataset
    from lucidrec.data.prepare import prepare
    from lucidrec.data.stats import dataset_stats

    dataset = load_dataset(name, data_dir, on_bad_lines="skip" if skip_bad_lines else "raise")
    stats = dataset_stats(dataset)
    config = prepare_options(min_rating, k_core, min_user, min_item, single_pass, dedup, min_history)
    if not config.is_identity():
        data = prepare(dataset, config)
        lengths = data.sequences.lengths()
        stats["filtered"] = {
            "config": config.model_dump(),
            "report": data.report,
            "users": data.n_users,
            "items": data.n_items,
            "interactions": int(lengths.sum()),
            "avg_history_length": float(lengths.mean()) if len(lengths) else 0.0,
        }
    if as_json:
        typer.echo(json.dumps(stats, indent=2))
        return
    for key, value in stats.items():
        if key == "filtered":
            typer.echo("after filtering:")
            for sub_key, sub_value in value.items():
                typer.echo(f"  {sub_key:<22} {sub_value}")
        elif isinstance(value, float):
            typer.echo(f"{key:<28} {value:.4f}")
        else:
            typer.echo(f"{key:<28} {value}")


@app.command("list")
def list_datasets(data_dir: Optional[Path] = DataDirOption):
    """Datasets found in the data directory, and the official sets that can be downloaded."""
    from lucidrec.data import available_datasets
    from lucidrec.data.download import OFFICIAL_DATASETS
    from lucidrec.settings import resolve_data_dir

    local = available_datasets(data_dir)
    root = resolve_data_dir(data_dir)
    typer.echo(f"in {root}: {', '.join(local) or '(none)'}" + ("" if root.is_dir() else " (the folder does not exist)"))
    for name, spec in OFFICIAL_DATASETS.items():
        typer.echo(f"  {name:<20} {'[local] ' if name in local else ''}{spec.description}")


@app.command("download")
@guarded
def download(name: str, data_dir: Optional[Path] = DataDirOption):
    """Download an official dataset (needs internet), verify its checksum and unpack it under raw/."""
    from lucidrec.data.download import download as fetch
    from lucidrec.settings import resolve_data_dir

    folder = fetch(name, resolve_data_dir(data_dir))
    typer.echo(f"downloaded and verified into {folder}")


@app.command("convert")
@guarded
def convert(name: str, out: Path = typer.Option(..., help="Folder to write the canonical layout to."),
            data_dir: Optional[Path] = DataDirOption, skip_bad_lines: bool = SkipBadLinesOption):
    """Write any readable dataset in the canonical parquet layout (fast to load afterwards)."""
    from lucidrec.data import load_dataset
    from lucidrec.data.loaders.canonical import save

    dataset = load_dataset(name, data_dir, on_bad_lines="skip" if skip_bad_lines else "raise")
    save(dataset, out)
    for note in dataset.notes:
        typer.echo(note)
    typer.echo(f"wrote {len(dataset.interactions)} interactions and {len(dataset.items)} items to {out}")
