"""Issue 2 figures: data loading/statistics and full-ranking evaluation cost, with peak memory.

Run by hand:  python bench/bench_data_eval.py [--datasets ml-1m amazon-beauty]
Each measurement runs in a fresh subprocess so peak memory (ru_maxrss) belongs to it alone.
Prints a markdown table for docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import json
import platform
import subprocess
import sys
import time

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
task, name = sys.argv[1], sys.argv[2]
if int(sys.argv[3]): torch.set_num_threads(int(sys.argv[3]))
out = {}
t0 = time.perf_counter()
from lucidrec.data import load_dataset
from lucidrec.data.stats import dataset_stats
dataset = load_dataset(name)
if task == "info":
    stats = dataset_stats(dataset)
    out.update(users=stats["users"], items=stats["items"], interactions=stats["interactions"])
    out["seconds"] = time.perf_counter() - t0
else:
    from lucidrec.data.prepare import prepare
    from lucidrec.data.split import leave_one_out
    from lucidrec.eval.evaluator import EvalConfig, evaluate
    from lucidrec.models.baselines import make_baseline
    from lucidrec.models.scoring import DotProductScorer
    from lucidrec.data.sequences import Ragged
    split = leave_one_out(prepare(dataset))
    out["prepare_split_seconds"] = time.perf_counter() - t0
    if task == "pop":
        model = make_baseline("pop").fit(split)
    else:  # a dot-product model with 64-d vectors: what every trained backbone costs to rank
        gen = torch.Generator().manual_seed(0)
        table = torch.randn(split.n_items + 1, 64, generator=gen)
        users = torch.randn(split.train.__len__(), 64, generator=gen)
        model = DotProductScorer(table, lambda history, u: users[torch.as_tensor(u)])
    t1 = time.perf_counter()
    result = evaluate(model, split, "test", EvalConfig())
    out["eval_seconds"] = time.perf_counter() - t1
    out["users_ranked"] = int(result.metrics["test/full/n_users"])
    out["recall@10"] = result.metrics["test/full/recall@10"]
    out["ndcg@10"] = result.metrics["test/full/ndcg@10"]
out["peak_rss_mb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
print(json.dumps(out))
"""


def measure(task: str, name: str, threads: int) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, task, name, str(threads)], capture_output=True, text=True, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "amazon-beauty"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the measured process (0: torch default)")
    args = parser.parse_args()
    import torch

    threads = args.threads or torch.get_num_threads()
    print(f"machine: {platform.processor() or platform.machine()}, {threads} torch threads, "
          f"python {platform.python_version()}, torch {torch.__version__}; {time.strftime('%Y-%m-%d')}")
    print("\n| dataset | task | seconds | peak RSS (MB) | result |\n|---|---|---|---|---|")
    for name in args.datasets:
        info = measure("info", name, args.threads)
        print(f"| {name} | `data info` (load + stats) | {info['seconds']:.2f} | {info['peak_rss_mb']:.0f} | "
              f"{info['users']:,} users × {info['items']:,} items, {info['interactions']:,} interactions |")
        for task in ("pop", "dot64"):
            r = measure(task, name, args.threads)
            label = "popularity baseline" if task == "pop" else "64-d dot-product model"
            print(f"| {name} | full-ranking eval, {label} | {r['eval_seconds']:.2f} (+{r['prepare_split_seconds']:.2f} load/split) | "
                  f"{r['peak_rss_mb']:.0f} | {r['users_ranked']:,} users; Recall@10 {r['recall@10']:.4f}, NDCG@10 {r['ndcg@10']:.4f} |")


if __name__ == "__main__":
    main()
