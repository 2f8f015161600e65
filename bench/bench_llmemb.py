"""LLMEmb benchmark: id-only baseline vs frozen-encoder table (LLM2X) vs LLMEmb, per backbone (run by hand).

    python bench/bench_llmemb.py [--datasets amazon-beauty ml-1m] [--models sasrec gru4rec bert4rec]
        [--variants id frozen llmemb] [--seeds 1 2 3] [--epochs 200] [--threads 1]
        [--out bench/runs/methods] [--set embedding.tuning.epochs=2 ...]

The grid itself is also a grid file, ``bench/grids/llmemb.toml`` (``lucidrec experiment run``: resumable cells
and committed result records, ``lucidrec report`` for the tables); this script keeps the commands the recorded
figures of docs/benchmarks.md name, the epoch caps and the sampled-100 table.

Every (dataset, backbone, variant, seed) is an ordinary run folder under ``--out``; finished runs
(metrics.json) are read back, killed ones continue from their checkpoint, so a long benchmark can be
stopped and continued. The training protocol (``bench/protocol.py``) is the backbone issue's
tuned id baseline; ``bench/bench_ger.py`` with the same ``--out`` shares the id runs. The SCFT encoder, the item tables and everything else LLMEmb builds are
cached in ``<out>/artifacts`` and shared by all seeds and backbones. E_cf (the alignment target)
is the id-only SASRec baseline of the first of ``--seeds`` (the baseline row itself; called with one seed,
the run aligns to its own seed's id SASRec).

Reports, per dataset x backbone x variant, mean ± std over seeds (full ranking, leave-one-out) of
NDCG@10 / Recall@10 overall, on tail targets (bottom 80% of items by training popularity) and on
head targets; paired tests vs the id baseline of the same seed on per-user NDCG@10 (Wilcoxon and
t-test, overall and tail); costs: SCFT wall time, encoding time, training time (sum of training
epochs, validation excluded) and seconds per epoch relative to the id baseline. Writes
``<out>/results.md`` and ``<out>/results.json`` (or --md-out / --json-out).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

import protocol

METRICS = ("ndcg@10", "recall@10")
GROUPS = ("", "tail/", "head/")
SAMPLED = "sampled100"  # the labelled extra protocol of the paper: the target among 100 uniform negatives


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--datasets", nargs="+", default=["amazon-beauty", "ml-1m"])
    p.add_argument("--models", nargs="+", default=["sasrec", "gru4rec", "bert4rec"])
    p.add_argument("--variants", nargs="+", default=["id", "frozen", "llmemb"],
                   choices=["id", "frozen", "no_align", "llmemb"])
    p.add_argument("--seeds", nargs="+", type=int, default=list(protocol.DEFAULT_SEEDS))
    p.add_argument("--epochs", type=int, default=200, help="epoch cap of the text-table variants (id runs are never capped)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (the machine is shared)")
    p.add_argument("--data-dir", default=None)
    p.add_argument("--out", type=Path, default=Path("bench/runs/methods"))
    p.add_argument("--artifacts-dir", type=Path, default=None, help="default <out>/artifacts")
    protocol.add_overrides_argument(p)
    p.add_argument("--json-out", type=Path, default=None)
    p.add_argument("--md-out", type=Path, default=None)
    p.add_argument("--report-only", action="store_true", help="only read finished runs, train nothing")
    p.add_argument("--quiet", action="store_true", help="no per-epoch progress")
    return p.parse_args(argv)


def run_config(args, dataset: str, model: str, variant: str, seed: int, cf_run: Path | None):
    from lucidrec.train.run import build_config

    embedding = {"name": "id"}
    if variant != "id":
        embedding = {"name": "llmemb", "variant": {"llmemb": "full"}.get(variant, variant),
                     "artifacts_dir": str(args.artifacts_dir or args.out / "artifacts")}
        if variant == "llmemb":
            embedding["reference"] = {"run": str(cf_run)}
    # --epochs caps the text-table variants only: the id baseline (and E_cf) always run to early stopping,
    # so a capped comparison reuses the same baseline folders as an uncapped one.
    epochs = 200 if variant == "id" else args.epochs
    base = protocol.run_values(dataset, model, seed, embedding, epochs=epochs, threads=args.threads,
                               data_dir=args.data_dir, progress=not args.quiet)
    return build_config(base, None, protocol.overrides_for(args.overrides, variant))


def run_dir(args, dataset, model, variant, seed) -> Path:
    return protocol.run_dir(args.out, dataset, model, variant, seed)


def ensure_run(args, dataset, model, variant, seed, cf_run=None) -> Path | None:
    from lucidrec.methods import train_or_reuse

    folder = run_dir(args, dataset, model, variant, seed)
    if args.report_only:
        return folder if (folder / "metrics.json").is_file() else None
    config = run_config(args, dataset, model, variant, seed, cf_run)
    if not (folder / "metrics.json").is_file():
        print(f"== {dataset} {model} {variant} seed {seed} -> {folder}", file=sys.stderr, flush=True)
    result = train_or_reuse(config, folder)
    return folder if result.get("status") == "done" else None


def finished_baselines(args, dataset: str, model: str) -> dict:
    """The finished id runs of ``--seeds`` when ``id`` is not among ``--variants``: read back, never trained,
    so a call that trains only the text variants still reports paired tests and cost ratios against them."""
    if "id" in args.variants:
        return {}
    folders = {seed: run_dir(args, dataset, model, "id", seed) for seed in args.seeds}
    folders = {seed: folder for seed, folder in folders.items() if (folder / "metrics.json").is_file()}
    return {(dataset, model, "id"): folders} if folders else {}


def training_seconds(folder: Path) -> tuple[float, int]:
    """(training seconds, epochs) from log.jsonl, the last line per epoch (a resumed run counts once)."""
    per_epoch = {}
    log = folder / "log.jsonl"
    if log.is_file():
        for line in log.read_text().splitlines():
            if line.strip():
                entry = json.loads(line)
                per_epoch[entry["epoch"]] = entry["seconds"]
    return float(sum(per_epoch.values())), len(per_epoch)


def per_user(folder: Path) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    """(users, per-user metrics, the evaluator's stored group masks: empty for run folders older than them)."""
    from lucidrec.eval.metrics import per_user_metrics
    from lucidrec.eval.report import read_per_user

    users, ranks, groups = read_per_user(folder)
    return users, per_user_metrics(ranks["full"], (10,)), groups


_TAIL: dict = {}


def tail_mask(args, dataset: str, users: np.ndarray, stored_groups: dict[str, np.ndarray]) -> np.ndarray:
    """Tail targets (the evaluator's group) for the test users, in ``users`` order: the mask the baseline run's
    evaluator stored, or, for run folders older than those masks, recomputed from the split (one load per dataset)."""
    if "tail" in stored_groups:
        return stored_groups["tail"]
    if dataset in _TAIL:
        return _TAIL[dataset]
    from lucidrec.data.pipeline import load_split
    from lucidrec.eval.evaluator import EvalConfig, group_labels
    from lucidrec.train.run import build_config

    config = build_config({"data": {"dataset": dataset, **({"data_dir": args.data_dir} if args.data_dir else {})}},
                          None, [o for o in args.overrides if o.startswith("data.")])
    _, split = load_split(config.data)
    tail = group_labels(split, split.test, EvalConfig())["tail"]
    if not np.array_equal(split.test.users, users):
        raise RuntimeError(f"{dataset}: run folders were evaluated on other users than the current split")
    _TAIL[dataset] = tail
    return tail


def costs(folder: Path) -> dict:
    seconds, epochs = training_seconds(folder)
    out = {"train_seconds": seconds, "epochs": epochs, "seconds_per_epoch": seconds / max(epochs, 1)}
    kept = folder / "llmemb" / "provenance.json"
    if kept.is_file():
        info = json.loads(kept.read_text())
        out["scft_seconds"] = info["table"].get("scft_seconds", 0.0)
        out["encode_seconds"] = info["table"].get("encode_seconds", 0.0)
    return out


def summarise(args, found: dict) -> dict:
    from lucidrec.eval.stats import mean_std, paired_test

    results = {}
    for (dataset, model, variant), folders in found.items():
        metrics = [json.loads((f / "metrics.json").read_text()) for f in folders.values()]
        keys = [f"test/full/{g}{m}" for g in GROUPS for m in METRICS]
        row = {"seeds": sorted(folders), "metrics": mean_std([{k: m[k] for k in keys} for m in metrics]),
               "costs": mean_std([costs(f) for f in folders.values()])}
        sampled = [k.replace("/full/", f"/{SAMPLED}/") for k in keys]
        if all(k in m for m in metrics for k in sampled):  # runs made with --set eval.protocols=[full,sampled]
            row["metrics_sampled"] = mean_std([{k: m[k] for k in sampled} for m in metrics])
        baseline = found.get((dataset, model, "id"), {})
        if variant != "id" and baseline:
            tests = {}
            for seed, folder in folders.items():
                if seed not in baseline:
                    continue
                users_a, base_values, base_groups = per_user(baseline[seed])
                users_b, values, _ = per_user(folder)
                tail = tail_mask(args, dataset, users_a, base_groups)
                assert np.array_equal(users_a, users_b)
                tests[seed] = {f"{group}{metric}": paired_test(base_values[metric][mask], values[metric][mask])
                               for group, mask in (("", slice(None)), ("tail/", tail)) for metric in METRICS}
            row["paired_vs_id"] = tests
            base_cost = mean_std([costs(f) for f in baseline.values()])
            row["relative_train_time"] = row["costs"]["train_seconds"]["mean"] / max(base_cost["train_seconds"]["mean"], 1e-9)
            row["relative_seconds_per_epoch"] = (row["costs"]["seconds_per_epoch"]["mean"]
                                                 / max(base_cost["seconds_per_epoch"]["mean"], 1e-9))
        results[f"{dataset}/{model}/{variant}"] = row
    return results


def fmt(stat: dict | None) -> str:
    return "—" if not stat else f"{stat['mean']:.4f} ± {stat['std']:.4f}"


def markdown(results: dict, header: str) -> str:
    lines = [header, "",
             "| dataset | backbone | items | seeds | NDCG@10 | Recall@10 | tail NDCG@10 | tail Recall@10 | head NDCG@10 "
             "| head Recall@10 | ΔNDCG@10 vs id (Wilcoxon p per seed) | tail ΔNDCG@10 (p) | SCFT s | encode s "
             "| train s, epochs (× id) | s/epoch (× id) |",
             "|" + "---|" * 16]
    for name, row in results.items():
        dataset, model, variant = name.split("/")
        m, c = row["metrics"], row["costs"]
        delta = tail_delta = "—"
        if row.get("paired_vs_id"):
            tests = row["paired_vs_id"].values()
            delta = "; ".join(f"{t['ndcg@10']['diff']:+.4f} ({t['ndcg@10']['wilcoxon_pvalue']:.2g})" for t in tests)
            tail_delta = "; ".join(f"{t['tail/ndcg@10']['diff']:+.4f} ({t['tail/ndcg@10']['wilcoxon_pvalue']:.2g})"
                                   for t in tests)
        rel = lambda key: f" (×{row[key]:.2f})" if key in row else ""  # noqa: E731
        scft = f"{c['scft_seconds']['mean']:.0f}" if "scft_seconds" in c else "—"
        encode = f"{c['encode_seconds']['mean']:.0f}" if "encode_seconds" in c else "—"
        lines.append(f"| {dataset} | {model} | {variant} | {len(row['seeds'])} | "
                     + " | ".join(fmt(m.get(f"test/full/{g}{k}")) for g in GROUPS for k in METRICS)
                     + f" | {delta} | {tail_delta} | {scft} | {encode} | "
                     f"{c['train_seconds']['mean']:.0f}, {c['epochs']['mean']:.0f} ep{rel('relative_train_time')} | "
                     f"{c['seconds_per_epoch']['mean']:.1f}{rel('relative_seconds_per_epoch')} |")
    sampled_rows = {name: row for name, row in results.items() if "metrics_sampled" in row}
    if sampled_rows:
        lines += ["", f"Extra, labelled: {SAMPLED} (the target ranked among 100 uniformly drawn items the user has not "
                  "seen; the protocol of the LLMEmb paper). Ratios are to the id row of the same dataset and backbone.", "",
                  "| dataset | backbone | items | seeds | " + " | ".join(f"{g}{k}" for g in GROUPS for k in METRICS)
                  + " | NDCG@10 × id | tail NDCG@10 × id |", "|" + "---|" * (6 + len(GROUPS) * len(METRICS))]
        for name, row in sampled_rows.items():
            dataset, model, variant = name.split("/")
            m = row["metrics_sampled"]
            base = sampled_rows.get(f"{dataset}/{model}/id", {}).get("metrics_sampled")
            ratio = lambda g: (f"{m[f'test/{SAMPLED}/{g}ndcg@10']['mean'] / base[f'test/{SAMPLED}/{g}ndcg@10']['mean']:.2f}"  # noqa: E731
                               if base and variant != "id" else "—")
            lines.append(f"| {dataset} | {model} | {variant} | {len(row['seeds'])} | "
                         + " | ".join(fmt(m.get(f"test/{SAMPLED}/{g}{k}")) for g in GROUPS for k in METRICS)
                         + f" | {ratio('')} | {ratio('tail/')} |")
    return "\n".join(lines) + "\n"


def main(argv=None) -> None:
    args = parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    started = time.time()
    found: dict = {}
    for dataset in args.datasets:
        cf_run = None
        if any(v == "llmemb" for v in args.variants):  # E_cf = the id SASRec of the first seed
            cf_run = ensure_run(args, dataset, "sasrec", "id", args.seeds[0])
            if args.report_only:
                cf_run = run_dir(args, dataset, "sasrec", "id", args.seeds[0])
        for model in args.models:
            found.update(finished_baselines(args, dataset, model))
            for variant in args.variants:
                if variant == "llmemb" and cf_run is None:
                    continue
                for seed in args.seeds:
                    folder = ensure_run(args, dataset, model, variant, seed, cf_run)
                    if folder is not None:
                        found.setdefault((dataset, model, variant), {})[seed] = folder
    results = summarise(args, found)
    try:
        load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        load = "n/a"
    header = (f"LLMEmb benchmark ({time.strftime('%Y-%m-%d')}; {platform.node()}, {os.cpu_count()} CPUs, load {load}; "
              f"torch threads {args.threads}; full ranking, leave-one-out; protocol of bench/protocol.py; "
              f"this call {time.time() - started:.0f} s). Costs are per run (SCFT and encoding are paid once per "
              "dataset and shared by seeds and backbones; E_cf is the id SASRec row).")
    text = markdown(results, header)
    md_out, json_out = args.md_out or args.out / "results.md", args.json_out or args.out / "results.json"
    md_out.parent.mkdir(parents=True, exist_ok=True)
    md_out.write_text(text)
    json_out.write_text(json.dumps({"header": header, "args": {k: str(v) for k, v in vars(args).items()},
                                    "results": results}, indent=2, default=str) + "\n")
    print(text)
    print(f"wrote {md_out} and {json_out}", file=sys.stderr)


if __name__ == "__main__":
    main()
