"""``lucidrec run``: the main job on the embedded default, end to end.

Dataset statistics, the training-free baselines, then a backbone trained with the default config,
all evaluated with full ranking and printed side by side, then one user's recommendations (explained
when the run has an explainer) and the command that opens the explorer on the run. An id run takes
its settings from the preset ``BACKBONE-DATASET`` (``lucidrec.train.presets``), if one is shipped. Re-running continues a killed run from
its checkpoint and reuses a finished one of the same config (another config in that folder is an error).
"""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded
from lucidrec.embeddings import EMBEDDINGS
from lucidrec.models import BACKBONES

ROWS = ("recall@10", "ndcg@10", "recall@20", "ndcg@20", "mrr", "tail/ndcg@10", "head/ndcg@10")


@guarded
def run(
    dataset: str = typer.Option("ml-100k", "--dataset", help="Dataset to run on."),
    model: str = choice_option("sasrec", "--model", kind="backbone", choices=BACKBONES.names(), help="Backbone to train."),
    embedding: str = choice_option("id", "--embedding", kind="item embedding", choices=EMBEDDINGS.names(),
                                   help="Item embedding source (ger: explained recommendations)."),
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
    from lucidrec.train.presets import dataset_preset
    from lucidrec.train.run import build_config

    data_config = DataConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None)
    # Tuned for id embeddings; another embedding starts from the generic defaults.
    preset = dataset_preset(model, dataset) if embedding == "id" else None
    base = {"data": data_config.model_dump(), "model": {"name": model}, "embedding": {"name": embedding}}
    config = build_config(base, None, overrides, preset)
    # The baselines see the same data, split and evaluation settings as the trained model (--set data.* too).
    dataset = config.data.dataset
    stats = dataset_stats(load_dataset(dataset, config.data.data_dir, on_bad_lines=config.data.on_bad_lines))
    typer.echo(f"{dataset}: {stats['users']} users, {stats['items']} items, {stats['interactions']} interactions, "
               f"avg history {stats['avg_history_length']:.1f}, {stats['share_items_with_text']:.1%} items with text (raw)")
    _, split = load_split(config.data)
    columns = {name: evaluate(make_baseline(name).fit(split), split, "test", config.eval).metrics for name in ("pop", "cooc")}

    if preset:
        typer.echo(f"settings: preset {preset} (tuned on validation; --set overrides them; lucidrec train --preset {preset})")
    run_dir = out / dataset / (model if embedding == "id" else f"{model}-{embedding}")
    columns[model] = train_or_reuse(config, run_dir)
    protocol = config.data.split.protocol.replace("_", "-")
    typer.echo(f"\nfull ranking, {protocol} split, test part (history items masked)")
    typer.echo(f"{'metric':<16}" + "".join(f"{name:>10}" for name in columns))
    for row in ROWS:
        key = f"test/full/{row}"
        typer.echo(f"{row:<16}" + "".join(f"{values.get(key, float('nan')):>10.4f}" for values in columns.values()))
    typer.echo(f"\nrun folder: {run_dir} (metrics.json, log.jsonl, item_table.npy)")
    show_one_user(run_dir)


def show_one_user(run_dir: Path, k: int = 5) -> None:
    """The first user's top-k: explained through the run's explainer, else with titles and a pointer to one."""
    from lucidrec.explain import NotExplainableError, explainer_for
    from lucidrec.explain.recommend import item_title, recommend
    from lucidrec.train.run import load_run

    loaded = load_run(run_dir)
    data = loaded[1]
    user = str(data.user_ids[0])
    try:
        explainer = explainer_for(run_dir)
    except NotExplainableError:
        explainer = None
    if explainer is not None:
        typer.echo(f"\nuser {user}, explained by the run's {type(explainer).__name__}:")
        typer.echo(explainer.explain(run_dir, user, k=k, loaded=loaded).text)
    else:
        history = [item_title(data, int(i)) for i in data.sequences[data.user_index([user])[0]][-3:]]
        typer.echo(f"\ntop {k} for user {user} (last seen: {'; '.join(history)}):")
        for item in recommend(run_dir, user, k, loaded=loaded):
            typer.echo(f"  {item.rank}. {item.title} (item {item.item_id})")
        typer.echo("id embeddings carry no reasons; --embedding ger trains a model whose every score is "
                   "explained by item attributes (lucidrec explain).")
    typer.echo(f"\nopen the explorer on this run: lucidrec serve {shlex.quote(str(run_dir))}")
