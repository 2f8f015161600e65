"""``lucidrec evaluate``: a training-free baseline on a dataset, or a saved run again."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Optional, get_args

import typer

from lucidrec.cli._common import DataDirOption, choice_option, guarded
from lucidrec.data.pipeline import SplitConfig
from lucidrec.eval.evaluator import EvalConfig
from lucidrec.models.baselines import BASELINES

# Choices from where they are defined (the baseline registry, the split and evaluation configs).
SPLITS = get_args(SplitConfig.model_fields["protocol"].annotation)
PROTOCOLS = get_args(get_args(EvalConfig.model_fields["protocols"].annotation)[0])


@guarded
def evaluate(
    dataset: Optional[str] = typer.Option(None, "--dataset", help="Dataset name (folder under the data directory) [required unless --run]."),
    model: str = choice_option("pop", "--model", kind="baseline", choices=BASELINES, help="Training-free baseline to evaluate (with --dataset)."),
    run: Optional[Path] = typer.Option(None, "--run", help="Re-evaluate a saved training run folder instead."),
    protocol: list[str] = choice_option([], "--protocol", kind="protocol", choices=PROTOCOLS, show_default=False, help="sampled adds sampled-100, full_unmasked adds full ranking with history items left in (RecBole's "
                                   "protocol for sequential models); extras, labelled: full ranking is always computed."),
    split: str = choice_option("leave_one_out", "--split", kind="split protocol", choices=SPLITS, help="How the data is split (with --dataset)."),
    out: Optional[Path] = typer.Option(None, "--out", help="Folder for metrics.json and per-user ranks [required with "
                                                           "--dataset; with --run: default the run folder]."),
    data_dir: Optional[Path] = DataDirOption,
    k: list[int] = typer.Option([], "--k", show_default=False, metavar="<int>", help="Cut-offs for Recall/NDCG, repeatable [default: 5 10 20, "
                                                                    "or the run's own]."),
):
    """Full-ranking evaluation (history items masked) with tail/head and user-length groups."""
    from lucidrec.config import validate_config
    from lucidrec.data.pipeline import DataConfig, SplitConfig, load_split
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
        raise typer.BadParameter("--out DIR is required with --dataset")
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
