"""``lucidrec evaluate``: a training-free baseline on a dataset, or a saved run again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional

import typer

from lucidrec.cli._common import DataDirOption, guarded


@guarded
def evaluate(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (folder under the data directory)."),
    model: str = typer.Option("pop", "--model", help="Baseline to evaluate: pop or cooc."),
    run: Optional[Path] = typer.Option(None, "--run", help="Re-evaluate a saved training run folder instead."),
    protocol: list[str] = typer.Option([], "--protocol", help="sampled adds sampled-100, full_unmasked adds full ranking with history items left in (RecBole's "
                                   "protocol for sequential models); extras, labelled: full ranking is always computed."),
    split: str = typer.Option("leave_one_out", "--split", help="leave_one_out or global_temporal."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and per-user ranks."),
    data_dir: Optional[Path] = DataDirOption,
    k: list[int] = typer.Option([], "--k", help="Cut-offs for Recall/NDCG (default 5 10 20, or the run's own)."),
):
    """Full-ranking evaluation (history items masked) with tail/head and user-length groups."""
    from lucidrec.config import validate_config
    from lucidrec.data.pipeline import DataConfig, SplitConfig, load_split
    from lucidrec.eval.evaluator import EvalConfig
    from lucidrec.eval.evaluator import evaluate as run_evaluation
    from lucidrec.eval.report import summary_table, write_metrics, write_per_user
    from lucidrec.models.baselines import make_baseline

    # Full ranking is the protocol every summary and comparison reads; sampled-100 only ever adds to it.
    added = tuple(dict.fromkeys(p for p in protocol if p != "full"))
    chosen = {"protocols": ("full", *added)}
    if k:
        chosen["ks"] = tuple(k)
    if run is not None:
        from lucidrec.train.run import evaluate_run

        # The run's own eval settings (its protocols too), with --k and any added --protocol on top.
        metrics = evaluate_run(run, out=out, add_protocols=added, **({"ks": chosen["ks"]} if k else {}))
        typer.echo(summary_table(metrics, "test/full"))
        _echo_extras(metrics)
        return
    if dataset is None:
        raise typer.BadParameter("give --dataset NAME (with --model) or --run DIR")
    if out is None:
        raise typer.BadParameter("--out DIR is required")
    eval_config = validate_config(EvalConfig, chosen, "evaluate options")
    data_config = DataConfig(dataset=dataset, data_dir=str(data_dir) if data_dir else None, split=SplitConfig(protocol=split))
    started = time.perf_counter()
    data, data_split = load_split(data_config)
    scorer = make_baseline(model).fit(data_split)
    metrics = {}
    results = {}
    for part in ("valid", "test"):
        results[part] = run_evaluation(scorer, data_split, part, eval_config)
        metrics.update(results[part].metrics)
    elapsed = time.perf_counter() - started
    write_metrics(
        out, metrics, model=model, config={"data": data_config.model_dump(), "eval": eval_config.model_dump()},
        data_hash=data.data_hash, split_info=data_split.info, prepare_report=data.report, seconds=elapsed,
    )
    write_per_user(out, "test", results["test"])
    typer.echo(f"{dataset} {model}: {summary_table(metrics, 'test/full')}")
    _echo_extras(metrics)
    typer.echo(f"wrote {out / 'metrics.json'}")


def _echo_extras(metrics: dict) -> None:
    """One labelled line per extra protocol present in ``metrics`` (full ranking is printed already)."""
    from lucidrec.eval.report import summary_table

    labels = sorted({key.split("/")[1] for key in metrics if key.startswith("test/")} - {"full"})
    for label in labels:
        name = "history items left in" if label == "full_unmasked" else label.replace("sampled", "sampled-")
        typer.echo(f"  {name} (extra): {summary_table(metrics, f'test/{label}')}")
