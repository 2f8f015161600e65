"""Data loading/statistics and full-ranking evaluation cost, with peak memory: a measurement record.

    python bench/bench_data_eval.py --threads 1 [--datasets ml-1m amazon-beauty] [--record FILE]

Each measurement runs in a fresh subprocess, so peak memory (ru_maxrss) belongs to it alone: `data info`
(load + statistics), and full-ranking evaluation of the test part for the popularity baseline and for a
random 64-d dot-product model (what every trained backbone costs to rank). Wall and CPU seconds are both
recorded: on a busy machine the wall time mostly measures the other jobs. Writes the record
``results/measurements/data_eval-threads<N>.json`` (``--record`` for another file) and prints its tables;
``lucidrec report results/measurements --out DIR`` renders every measurement record.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement

CHILD = r"""
import json, resource, sys, time
import numpy as np, torch
task, name = sys.argv[1], sys.argv[2]
if int(sys.argv[3]): torch.set_num_threads(int(sys.argv[3]))
out = {}
t0, c0 = time.perf_counter(), time.process_time()
from lucidrec.data import load_dataset
from lucidrec.data.stats import dataset_stats
dataset = load_dataset(name)
if task == "info":
    stats = dataset_stats(dataset)
    out.update(users=stats["users"], items=stats["items"], interactions=stats["interactions"])
    out["seconds"], out["cpu_seconds"] = time.perf_counter() - t0, time.process_time() - c0
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
    t1, c1 = time.perf_counter(), time.process_time()
    result = evaluate(model, split, "test", EvalConfig())
    out["eval_seconds"], out["eval_cpu_seconds"] = time.perf_counter() - t1, time.process_time() - c1
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
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m", "amazon-beauty"])
    parser.add_argument("--threads", type=int, default=0, help="torch threads in the measured process (0: torch default)")
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/data_eval-threads<N>.json)")
    args = parser.parse_args()
    import torch

    threads = args.threads or torch.get_num_threads()
    loading, evaluation = [], []
    for name in args.datasets:
        info = measure("info", name, args.threads)
        loading.append([name, info["seconds"], info["cpu_seconds"], info["peak_rss_mb"], info["users"], info["items"],
                        info["interactions"]])
        for task, label in (("pop", "popularity baseline"), ("dot64", "64-d dot-product model")):
            r = measure(task, name, args.threads)
            evaluation.append([name, label, r["eval_seconds"], r["eval_cpu_seconds"], r["prepare_split_seconds"], r["peak_rss_mb"],
                               r["users_ranked"], r["recall@10"], r["ndcg@10"]])
    tables = [
        {"title": "`data info`: load + statistics",
         "columns": [{"name": "dataset"}, {"name": "seconds", "digits": 2}, {"name": "CPU seconds", "digits": 2},
                     {"name": "peak RSS (MB)", "digits": 0},
                     {"name": "users"}, {"name": "items"}, {"name": "interactions"}],
         "rows": loading, "note": "Each in a fresh process; peak RSS is its ru_maxrss. Seconds are wall time, CPU "
                                  "seconds the process's own (what other jobs on the machine do not inflate)."},
        {"title": "Full-ranking evaluation of the test part",
         "columns": [{"name": "dataset"}, {"name": "model"}, {"name": "eval seconds", "digits": 2},
                     {"name": "eval CPU seconds", "digits": 2},
                     {"name": "load + split seconds", "digits": 2}, {"name": "peak RSS (MB)", "digits": 0},
                     {"name": "users ranked"}, {"name": "Recall@10", "digits": 4}, {"name": "NDCG@10", "digits": 4}],
         "rows": evaluation,
         "note": "History items masked, every item a candidate; the dot-product model's vectors are random, so its "
                 "metrics only show that every user was ranked."},
    ]
    record = build_measurement("data_eval", f"Data loading and evaluation cost ({threads} torch thread(s))", tables,
                               threads=threads)
    publish_measurement(record, args.record or DEFAULT_FOLDER / f"data_eval-threads{threads}.json")


if __name__ == "__main__":
    main()
