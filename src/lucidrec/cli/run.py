"""``lucidrec run``: the main job on the embedded default, end to end.

Dataset statistics, the training-free baselines, then a backbone trained with the default config,
all evaluated with full ranking and printed side by side. Re-running continues a killed run from
its checkpoint and reuses a finished one of the same config (another config in that folder is an error).
"""

from __future__ import annotations

from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded
from lucidrec.models import BACKBONES

ROWS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr", "tail/ndcg@10", "head/ndcg@10")


@guarded
def run(
    dataset: str = typer.Option("ml-100k", "--dataset", help="Dataset to run on."),
    model: str = choice_option("sasrec", "--model", kind="backbone", choices=BACKBONES.names(), help="Backbone to train."),
    out: Path = typer.Option(Path("runs/quickstart"), "--out", help="Folder for all outputs."),
    overrides: list[str] = typer.Option([], "--set", show_default=False, metavar="KEY=VALUE", help="Override any training key (see lucidrec train)."),
    data_dir: Optional[Path] = DataDirOption,
):
    """Statistics, baselines and a trained backbone on one dataset, in one table."""
    from lucidrec.data import load_dataset
    from lucidrec.data.pipeline import DataConfig, load_split
    from lucidrec.data.stats import dataset_stats
    from lucidrec.eval.evaluator import evaluate
    from lucidrec.models.baselines import make_baseline
    from lucidrec.methods import train_or_reuse
    from lucidrec.train.run import build_config

    data_config = DataConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None)
    config = build_config({"data": data_config.model_dump(), "model": {"name": model}}, None, overrides)
    # The baselines see the same data, split and evaluation settings as the trained model (--set data.* too).
    dataset = config.data.dataset
    stats = dataset_stats(load_dataset(dataset, config.data.data_dir, on_bad_lines=config.data.on_bad_lines))
    typer.echo(f"{dataset}: {stats['users']} users, {stats['items']} items, {stats['interactions']} interactions, "
               f"avg history {stats['avg_history_length']:.1f}, {stats['share_items_with_text']:.1%} items with text (raw)")
    _, split = load_split(config.data)
    columns = {name: evaluate(make_baseline(name).fit(split), split, "test", config.eval).metrics for name in ("pop", "cooc")}

    run_dir = out / dataset / model
    columns[model] = train_or_reuse(config, run_dir)
    protocol = config.data.split.protocol.replace("_", "-")
    typer.echo(f"\nfull ranking, {protocol} split, test part (history items masked)")
    typer.echo(f"{'metric':<16}" + "".join(f"{name:>10}" for name in columns))
    for row in ROWS:
        key = f"test/full/{row}"
        typer.echo(f"{row:<16}" + "".join(f"{values.get(key, float('nan')):>10.4f}" for values in columns.values()))
    typer.echo(f"\nrun folder: {run_dir} (metrics.json, log.jsonl, item_table.npy)")
