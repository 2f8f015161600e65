"""Time one training step padded to max_len vs cut to the batch's longest row (and length-bucketed), and
the full softmax vs the sampled softmax, on real rows of a dataset (default amazon-beauty).

In one process, per ``--max-len``: the same random batches of ``--batch-size`` users, each step run with
every variant in rotating order so all see the same machine load; "bucketed" runs the batches that
``train.length_bucketing`` would form from the same shuffled users (so its rows differ: compare means,
which is what an epoch costs). A few batches are a noisy sample of an epoch's, so the positions an epoch
computes (rows x batch width, summed over all its batches) are printed too. A step is forward, loss,
backward and an Adam step. Also times the user states of four of the evaluator's batches (1,024
validation users each, sorted by history length as the evaluator sorts them, spread from the shortest to
the longest), padded vs cut, with the cut widths. Writes the measurement record
``results/measurements/padding_loss.json`` (``--record`` for another file) and prints its table.

    python bench/bench_padding_loss.py --models sasrec gru4rec bert4rec caser --max-len 200 50 --steps 6 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np
import torch

from lucidrec.data.pipeline import load_split
from lucidrec.experiments.measurements import DEFAULT_FOLDER, build_measurement
from lucidrec.experiments.report import publish_measurement
from lucidrec.train.batches import epoch_batches, history_widths, trainable_users, training_batch
from lucidrec.train.run import build_config, build_model
from lucidrec.train.trainer import negative_sampler, next_item_step_loss
from protocol import run_values

#: name -> (cut to the longest row, loss, batches from length bucketing)
VARIANTS = {
    "padded ce": (False, "ce", False),
    "cut ce": (True, "ce", False),
    "bucketed ce": (True, "ce", True),
    "cut sampled softmax": (True, "sampled_softmax", False),
}


def step(model, optimizer, split, users, train_config, to_longest, sampler, rng) -> tuple[float, int]:
    inputs, targets = training_batch(model, split.train, users, train_config.history_window, rng, to_longest)
    loss, _, _ = next_item_step_loss(model, model, inputs, targets, users, train_config,
                                     torch.Generator().manual_seed(0), sampler)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach()), inputs.shape[1]


def measure(dataset: str, model_name: str, max_len: int, steps: int, batch_size: int, bucketing: int,
            n_negatives: int, threads: int, data_dir: str | None = None, eval_batches: int = 4,
            eval_batch_size: int = 1024) -> dict:
    torch.set_num_threads(threads)
    values = run_values(dataset, model_name, seed=1, embedding={"name": "id"}, threads=threads, batch_size=batch_size,
                        data_dir=data_dir)
    values["model"]["max_len"] = max_len
    config = build_config(values)
    data, split = load_split(config.data)
    torch.manual_seed(1)
    model = build_model(config, data, split)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    configs = {name: config.train.model_copy(update={"loss": loss, "n_negatives": n_negatives})
               for name, (_, loss, _) in VARIANTS.items()}
    samplers = {name: negative_sampler(configs[name], model, split) for name in VARIANTS}
    rng = np.random.default_rng(1)
    order = rng.permutation(trainable_users(split.train, model.objective))
    plain = epoch_batches(order, batch_size)
    row_widths = history_widths(split.train, order, model)
    bucketed = epoch_batches(order, batch_size, bucketing, row_widths, rng)
    width_of = dict(zip(order.tolist(), np.maximum(row_widths, 1).tolist()))
    # Positions an epoch computes (rows x batch width, summed over every batch): the cost the timings sample.
    cells = {"padded": len(order) * max_len,
             "cut": sum(len(b) * max(width_of[u] for u in b.tolist()) for b in plain),
             "bucketed": sum(len(b) * max(width_of[u] for u in b.tolist()) for b in bucketed)}
    model.train()
    seconds = {name: [] for name in VARIANTS}
    widths = {name: [] for name in VARIANTS}
    names = list(VARIANTS)
    for index in range(steps):
        shift = index % len(names)
        for name in names[shift:] + names[:shift]:
            to_longest, _, from_buckets = VARIANTS[name]
            users = (bucketed if from_buckets else plain)[index]
            started = time.perf_counter()
            _, width = step(model, optimizer, split, users, configs[name], to_longest, samplers[name], rng)
            seconds[name].append(time.perf_counter() - started)
            widths[name].append(width)
    # Evaluation: a few of the evaluator's own batches (users sorted by history length), spread over the order.
    history = split.valid.history
    eval_order = np.argsort(history.lengths(), kind="stable")
    n_eval_batches = -(-len(eval_order) // eval_batch_size)
    picked = np.unique(np.linspace(0, n_eval_batches - 1, eval_batches).round().astype(int))
    eval_seconds, eval_width = {"padded": [], "cut": []}, []
    model.eval()
    with torch.no_grad():
        for index in picked:
            batch = history.take(np.sort(eval_order[index * eval_batch_size:(index + 1) * eval_batch_size]))
            for label, to_longest in (("padded", False), ("cut", True))[:: 1 if index % 2 else -1]:
                started = time.perf_counter()
                seqs = model.inference_input(batch, to_longest=to_longest)
                model.encode(seqs)
                eval_seconds[label].append(time.perf_counter() - started)
                if to_longest:
                    eval_width.append(seqs.shape[1])
    eval_seconds = {label: sum(values) for label, values in eval_seconds.items()}
    return {"dataset": dataset, "model": model_name, "max_len": max_len, "items": data.n_items,
            "batches_per_epoch": len(plain), "mean_width": {n: statistics.mean(w) for n, w in widths.items()},
            "seconds": {n: statistics.mean(s) for n, s in seconds.items()}, "eval_seconds": eval_seconds,
            "eval_width": eval_width, "cells": cells}


def record_table(results: list[dict], dataset: str, batch_size: int, steps: int) -> dict:
    names = list(VARIANTS)
    columns = [{"name": "model"}, {"name": "max_len"}, {"name": "items"},
               *({"name": f"{n} s/step", "digits": 3} for n in names),
               *({"name": f"{n} mean width", "digits": 0} for n in names),
               {"name": "speed-up, cut", "digits": 2, "suffix": "×"}, {"name": "speed-up, bucketed", "digits": 2, "suffix": "×"},
               {"name": "positions per epoch, padded"}, {"name": "positions per epoch, cut"},
               {"name": "positions per epoch, bucketed"},
               {"name": "speed-up, sampled softmax over cut ce", "digits": 2, "suffix": "×"},
               {"name": "evaluation s, padded", "digits": 2}, {"name": "evaluation s, cut", "digits": 2},
               {"name": "evaluation cut widths"}]
    rows = []
    for r in results:
        s, w, e = r["seconds"], r["mean_width"], r["eval_seconds"]
        rows.append([r["model"], r["max_len"], r["items"], *(s[n] for n in names), *(w[n] for n in names),
                     s["padded ce"] / s["cut ce"], s["padded ce"] / s["bucketed ce"],
                     r["cells"]["padded"], r["cells"]["cut"], r["cells"]["bucketed"],
                     s["cut ce"] / s["cut sampled softmax"], e["padded"], e["cut"], "/".join(map(str, r["eval_width"]))])
    return {"title": f"Mean seconds per training step on {dataset} rows (batch {batch_size}, {steps} steps per variant)",
            "columns": columns, "rows": rows,
            "note": "Speed-ups against padding every batch to max_len; sampled softmax against full CE, both on cut "
                    "batches. Positions per epoch: rows x batch width summed over an epoch's batches. Evaluation: the "
                    "user states of four of the evaluator's validation batches, padded vs cut."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", default="amazon-beauty")
    parser.add_argument("--data-dir", default=None, help="folder holding the dataset (default: the usual search)")
    parser.add_argument("--models", nargs="+", default=["sasrec"])
    parser.add_argument("--max-len", nargs="+", type=int, default=[200, 50])
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--bucketing", type=int, default=16, help="train.length_bucketing of the bucketed variant")
    parser.add_argument("--n-negatives", type=int, default=256)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/padding_loss.json)")
    args = parser.parse_args()
    results = []
    for model_name in args.models:
        for max_len in args.max_len:
            results.append(measure(args.dataset, model_name, max_len, args.steps, args.batch_size, args.bucketing,
                                   args.n_negatives, args.threads, args.data_dir))
            print(f"{model_name} max_len {max_len}: " + ", ".join(f"{n} {v:.3f} s" for n, v in results[-1]["seconds"].items()),
                  flush=True)
    record = build_measurement("padding_loss", "Training cost: cut batches, length bucketing, sampled softmax",
                               [record_table(results, args.dataset, args.batch_size, args.steps)], threads=args.threads,
                               extra={"bucketing": args.bucketing, "n_negatives": args.n_negatives})
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
