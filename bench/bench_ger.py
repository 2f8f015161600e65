"""GER benchmark: base embedding vs GER refined (LLM scorer, encoder scorer), run by hand.

    python bench/bench_ger.py --out runs/bench_ger                   # the full grid (hours: see below)
    python bench/bench_ger.py --out runs/ger_smoke --smoke           # a 1-minute check of the machinery
    python bench/bench_ger.py --out runs/bench_ger --score-only      # the scoring-cost table only

The grid itself is also a grid file, ``bench/grids/ger.toml`` (``lucidrec experiment run``: resumable cells and
committed result records, ``lucidrec report`` for the tables); this script keeps the scoring-cost measurement,
the ``--base-seed`` and ``--smoke`` variations and the commands the recorded figures of docs/benchmarks.md name.

Grid: datasets ml-1m and amazon-beauty x backbones SASRec, GRU4Rec, BERT4Rec x seeds 1, 2, 3 x
variants ``id`` (the base: id embedding, trained by the shared protocol of ``bench/protocol.py``, so
``bench/bench_llmemb.py`` with the same ``--out`` reuses these runs), ``llm`` (GER refined, LLM scorer: SmolLM2 single-pass slots by
default, ``--llm-config FILE.json`` for any chat config, e.g. an OpenAI-compatible endpoint) and
``encoder`` (GER refined, MiniLM anchor scorer), optionally ``llm_tuned`` and ``llm_tuned_top`` (the LLM
scorer LoRA-tuned on the recommendation loss first, ``tuning.enabled``, with uniform or base-model top
negatives; not in the default grid), and the control ``reduced`` (the same refinement
training with the guided block zeroed: [0 ; PCA(base)], so any gain of the refined variants over it
is the attributes' and not the extra fine-tuning of the base). Each refined run uses the base run of the same
dataset, backbone and seed as its base (``embedding.base.run``), so the comparison is paired.

``--set KEY=VALUE`` changes every run of the call (``embedding.*`` keys only the refined variants, e.g.
``--set embedding.base.train_reduced=false``); give such a call its own ``--out`` (with links to the base
runs and ``cache``): a finished folder of another config is an error, never silently reused.

``--score-only`` scores the catalogs and stops (no training: it can run beside a training job).

Resumable: every run lives in ``<out>/<dataset>/<model>/<variant>/seed<k>/``; a
finished run (metrics.json) is reused, an interrupted one continues from its checkpoint, and item
scores come from the response / vector caches under ``<out>/cache`` (a killed scoring pass resumes).

Reports (``<out>/summary.md`` and ``summary.json``): MRR, Recall@10/20, NDCG@10/20 as mean ± std
over seeds; the paired test (``lucidrec.eval.stats.paired_test``) of each refined variant against
base on per-user metrics averaged over the seeds (same users, same order); and the scoring cost per
dataset and scorer (items/s, total seconds, and the cache hits of an immediate re-run).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from pathlib import Path

import numpy as np

import protocol

METRICS = ("mrr", "recall@10", "recall@20", "ndcg@10", "ndcg@20")
BASE = protocol.BASELINE
VARIANTS = (BASE, "llm", "encoder", "reduced", "llm_tuned", "llm_tuned_top")


def run_config(args, dataset: str, model: str, seed: int, variant: str, embedding: dict):
    from lucidrec.train.run import build_config

    values = protocol.run_values(dataset, model, seed, embedding, epochs=args.epochs, threads=args.threads,
                                 data_dir=args.data_dir, progress=args.progress)
    if args.max_len:
        values["model"]["max_len"] = args.max_len
    if args.smoke:
        values["data"]["prepare"] = {"min_item_interactions": 200, "min_user_interactions": 5}
        values["model"].update(hidden=16, max_len=20, layers=1) if model != "gru4rec" else values["model"].update(hidden=16, max_len=20)
        values["train"].update(epochs=1, batch_size=256)
    return build_config(values, None, protocol.overrides_for(args.overrides, variant))


def train(config, out: Path) -> dict:
    from lucidrec.methods import train_or_reuse

    started = time.perf_counter()
    result = train_or_reuse(config, out)
    print(f"  {out}: {result.get('status')} after {time.perf_counter() - started:.0f} s", flush=True)
    if result.get("status") != "done":
        raise SystemExit(f"{out} did not finish ({result}); run the same command again to resume it")
    return result


def ger_embedding(args, variant: str, base_run: Path) -> dict:
    embedding = {"name": "ger", "mode": "reduced" if variant == "reduced" else "refined", "base": {"run": str(base_run)},
                 "cache_dir": str(args.out / "cache")}
    # One branch per scorer, so no later check can overwrite the choice (an if/else chain here once turned every
    # "llm" variant into the encoder scorer).
    if not variant.startswith("llm"):
        return {**embedding, "scorer": {"kind": "encoder"}}
    embedding["scorer"] = {"kind": "llm", "llm": args.llm, "batch_size": args.llm_batch_size}
    if variant.startswith("llm_tuned"):
        embedding["tuning"] = {"enabled": True, **({"steps": args.tune_steps} if args.tune_steps else {})}
        if variant == "llm_tuned_top":
            embedding["tuning"]["negatives_from"] = "base_top"
    return embedding


def scoring_cost(args, dataset: str, variant: str) -> dict:
    """Score the whole catalog once (resumable, cached) and again (all cache hits): items/s and time."""
    from lucidrec.data.pipeline import DataConfig, load_split
    from lucidrec.methods.ger.state import item_texts, score_items
    from lucidrec.embeddings.ger.config import GERConfig
    from lucidrec.embeddings.ger.attributes import resolve_attributes

    config = GERConfig(scorer={"kind": "llm" if variant == "llm" else "encoder", "llm": args.llm if variant == "llm" else None,
                               "batch_size": args.llm_batch_size}, cache_dir=str(args.out / "cache"))
    data_config = run_config(args, dataset, "sasrec", protocol.DEFAULT_SEEDS[0], BASE, {"name": "id"}).data
    data, _ = load_split(DataConfig.model_validate(data_config.model_dump()))
    texts, missing = item_texts(data, config)
    attributes = resolve_attributes(None, dataset)
    started = time.perf_counter()
    _, first = score_items(config, attributes, texts, missing)
    first["wall_seconds"] = round(time.perf_counter() - started, 2)
    started = time.perf_counter()
    _, again = score_items(config, attributes, texts, missing)
    return {"items": int(data.n_items), "without_text": int(missing.sum()), "first": first,
            "rerun": {"cache_hits": again.get("cache_hits"), "wall_seconds": round(time.perf_counter() - started, 2)}}


def per_user(run: Path) -> dict[str, np.ndarray]:
    from lucidrec.eval.metrics import per_user_metrics
    from lucidrec.eval.report import read_per_user

    return per_user_metrics(read_per_user(run)[1]["full"], (10, 20))


def summarise(args, results: dict) -> tuple[str, dict]:
    from lucidrec.eval.stats import mean_std, paired_test

    lines = ["| dataset | model | variant | " + " | ".join(METRICS) + " | ΔNDCG@10 vs id (p) |",
             "|---" * (4 + len(METRICS)) + "|"]
    summary: dict = {}
    for (dataset, model), variants in results.items():
        base_users = None
        if BASE in variants:
            base_users = {m: np.mean([per_user(r)[m] for r in variants[BASE]["runs"]], axis=0) for m in METRICS}
        for variant, entry in variants.items():
            stats = mean_std([{m: r[f"test/full/{m}"] for m in METRICS} for r in entry["metrics"]])
            row = {m: stats[m] for m in METRICS}
            test = None
            if variant != BASE and base_users is not None:
                mine = {m: np.mean([per_user(r)[m] for r in entry["runs"]], axis=0) for m in METRICS}
                row["paired_vs_base"] = {m: paired_test(base_users[m], mine[m]) for m in METRICS}
                test = row["paired_vs_base"]["ndcg@10"]
            summary[f"{dataset}/{model}/{variant}"] = row
            cells = " | ".join(f"{row[m]['mean']:.4f} ± {row[m]['std']:.4f}" for m in METRICS)
            p = "" if test is None else f"{test['relative']:+.1%}, t p={test['t_pvalue']:.2g}, W p={test['wilcoxon_pvalue']:.2g}"
            lines.append(f"| {dataset} | {model} | {variant} (n={len(entry['metrics'])}) | {cells} | {p} |")
    return "\n".join(lines), summary


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--datasets", default="ml-1m,amazon-beauty")
    parser.add_argument("--models", default="sasrec,gru4rec,bert4rec")
    parser.add_argument("--variants", default=f"{BASE},llm,encoder,reduced")
    parser.add_argument("--seeds", default=",".join(map(str, protocol.DEFAULT_SEEDS)))
    parser.add_argument("--epochs", type=int, default=200)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--base-seed", type=int, default=None,
                        help="refine the base run of this seed for every --seeds value (the spread is then that "
                             "of the refinement stage alone; folders seed<k>-base<N>)")
    parser.add_argument("--max-len", type=int, default=None,
                        help="override the protocol's max_len (a cheaper grid; give it its own --out)")
    parser.add_argument("--score-only", action="store_true", help="score the catalogs, train nothing")
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--llm-config", type=Path, default=None, help="JSON chat config for the llm variant")
    parser.add_argument("--llm-batch-size", type=int, default=16)
    parser.add_argument("--tune-steps", type=int, default=None, help="llm_tuned: steps of the scorer tuning")
    parser.add_argument("--progress", action="store_true")
    protocol.add_overrides_argument(parser)
    parser.add_argument("--smoke", action="store_true", help="ml-100k slice, SASRec, 1 seed, 1 epoch, tiny model")
    args = parser.parse_args()
    args.out = args.out.resolve()
    args.llm = json.loads(args.llm_config.read_text()) if args.llm_config else None
    if args.smoke:
        args.datasets, args.models, args.seeds = "ml-100k", "sasrec", "1"
    import torch

    torch.set_num_threads(args.threads)
    variants = args.variants.split(",")
    unknown = [v for v in variants if v not in VARIANTS]
    if unknown:
        parser.error(f"--variants: unknown {', '.join(unknown)}; valid: {', '.join(VARIANTS)}")
    costs = {}
    for dataset in args.datasets.split(","):
        for variant in (v for v in variants if v in ("llm", "encoder")):  # the tuned variants score inside their run
            print(f"scoring {dataset} with the {variant} scorer ...", flush=True)
            costs[f"{dataset}/{variant}"] = scoring_cost(args, dataset, variant)
            print("  ", json.dumps(costs[f"{dataset}/{variant}"]), flush=True)
    if args.score_only:
        print(json.dumps(costs, indent=2, default=str))
        return
    results: dict = {}
    for dataset in args.datasets.split(","):
        for model in args.models.split(","):
            entry = results.setdefault((dataset, model), {})
            for seed in map(int, args.seeds.split(",")):
                base_seed = args.base_seed or seed
                base_dir = protocol.run_dir(args.out, dataset, model, BASE, base_seed)
                base_metrics = train(run_config(args, dataset, model, base_seed, BASE, {"name": "id"}), base_dir)
                if BASE in variants and base_dir not in entry.get(BASE, {}).get("runs", []):
                    entry.setdefault(BASE, {"metrics": [], "runs": []})
                    entry[BASE]["metrics"].append(base_metrics)
                    entry[BASE]["runs"].append(base_dir)
                for variant in (v for v in variants if v != BASE):
                    out = protocol.run_dir(args.out, dataset, model, variant, seed)
                    if base_seed != seed:
                        out = out.with_name(f"seed{seed}-base{base_seed}")
                    config = run_config(args, dataset, model, seed, variant, ger_embedding(args, variant, base_dir))
                    entry.setdefault(variant, {"metrics": [], "runs": []})
                    entry[variant]["metrics"].append(train(config, out))
                    entry[variant]["runs"].append(out)
    table, summary = summarise(args, results)
    cost_lines = ["| dataset / scorer | items | items/s (first pass) | seconds | re-run cache hits | re-run seconds |",
                  "|---|---|---|---|---|---|"]
    for key, cost in costs.items():
        first = cost["first"]
        cost_lines.append(f"| {key} | {cost['items']} | {first.get('items_per_second')} | {first['wall_seconds']} | "
                          f"{cost['rerun']['cache_hits']} | {cost['rerun']['wall_seconds']} |")
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    text = (f"# GER benchmark ({time.strftime('%Y-%m-%d %H:%M')}, load {load}, threads {args.threads or 'default'})\n\n"
            f"{table}\n\nScoring cost\n\n" + "\n".join(cost_lines) + "\n")
    (args.out / "summary.md").write_text(text)
    (args.out / "summary.json").write_text(json.dumps({"results": summary, "scoring": costs}, indent=2, default=str))
    print(text)


if __name__ == "__main__":
    main()
