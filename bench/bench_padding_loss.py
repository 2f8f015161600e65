"""Time one training step padded to max_len vs cut to the batch's longest row (and length-bucketed), and
the full softmax vs the sampled softmax, on real rows of a dataset (default amazon-beauty).

In one process, per ``--max-len``: the same random batches of ``--batch-size`` users, each step run with
every variant in rotating order so all see the same machine load; "bucketed" runs the batches that
``train.length_bucketing`` would form from the same shuffled users (so its rows differ: compare means,
which is what an epoch costs). A few batches are a noisy sample of an epoch's, so the positions an epoch
computes (rows x batch width, summed over all its batches) are printed too. A step is forward, loss,
backward and an Adam step. Also times the user states of four of the evaluator's batches (1,024
validation users each, sorted by history length as the evaluator sorts them, spread from the shortest to
the longest), padded vs cut, with the cut widths.

    nice -n 10 python bench/bench_padding_loss.py --dataset amazon-beauty --max-len 200 50 --steps 10 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lucidrec.data.pipeline import load_split
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
    args = parser.parse_args()
    names = list(VARIANTS)
    print(f"{args.dataset}, batch {args.batch_size}, {args.steps} steps per variant, {args.threads} thread(s); "
          f"mean seconds per training step (mean batch width)")
    print("| model | max_len | items | " + " | ".join(names) + " | speed-up, cut | speed-up, bucketed | "
          "positions per epoch, padded / cut / bucketed | "
          "speed-up, sampled softmax over cut ce | evaluation, padded / cut |")
    print("|---" * (len(names) + 8) + "|")
    for model_name in args.models:
        for max_len in args.max_len:
            r = measure(args.dataset, model_name, max_len, args.steps, args.batch_size, args.bucketing,
                        args.n_negatives, args.threads, args.data_dir)
            s, w, e = r["seconds"], r["mean_width"], r["eval_seconds"]
            print(f"| {model_name} | {max_len} | {r['items']:,} | "
                  + " | ".join(f"{s[n]:.3f} ({w[n]:.0f})" for n in names)
                  + f" | **{s['padded ce'] / s['cut ce']:.2f}×** | **{s['padded ce'] / s['bucketed ce']:.2f}×** | "
                  + " / ".join(f"{r['cells'][k] / 1e6:.2f}M" for k in ("padded", "cut", "bucketed")) + " | "
                  f"**{s['cut ce'] / s['cut sampled softmax']:.2f}×** | "
                  f"{e['padded']:.2f} s / {e['cut']:.2f} s, widths {'/'.join(map(str, r['eval_width']))} (**{e['padded'] / e['cut']:.2f}×**) |", flush=True)


if __name__ == "__main__":
    main()
