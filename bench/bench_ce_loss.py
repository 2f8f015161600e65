"""Time one training step under different loss implementations and precisions, side by side.

Each variant is ``IMPLEMENTATION[:PRECISION]`` of ``train.ce_implementation`` (dense, chunked) and
``train.precision`` (float32, bfloat16). In one process, on the benchmark protocol's model and data
(``bench/protocol.py``): the same batches of epoch 0, each step run with every variant in rotating
order so all see the same machine load. Prints the median seconds per step (forward, loss, backward,
Adam step), the speed-up of each variant over the first, the projected training epoch, and the largest
loss difference from the first variant on identical weights and dropout masks. Writes the measurement record
``results/measurements/ce_loss-<variants>.json`` (``--record`` for another file) and prints its table.

    python bench/bench_ce_loss.py --datasets ml-1m amazon-beauty --models sasrec gru4rec caser bert4rec --steps 30 --threads 1
    python bench/bench_ce_loss.py --variants chunked chunked:bfloat16 --datasets ml-1m amazon-beauty \
        --models sasrec gru4rec caser bert4rec --steps 12 --threads 1
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
from lucidrec.train.batches import trainable_users, training_batch
from lucidrec.train.run import build_config, build_model
from lucidrec.train.trainer import next_item_step_loss
from protocol import run_values


def variant_config(train_config, variant: str):
    implementation, _, precision = variant.partition(":")
    return train_config.model_copy(update={"ce_implementation": implementation, "precision": precision or "float32"})


def step(model, optimizer, inputs, targets, users, train_config) -> float:
    loss, _, _ = next_item_step_loss(model, model, inputs, targets, users, train_config, torch.Generator().manual_seed(0))
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def measure(dataset: str, model_name: str, variants: list[str], steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config = build_config(run_values(dataset, model_name, seed=1, embedding={"name": "id"}, threads=threads))
    configs = {variant: variant_config(config.train, variant) for variant in variants}
    data, split = load_split(config.data)
    torch.manual_seed(1)
    model = build_model(config, data, split)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    rng = np.random.default_rng(1)
    users = rng.permutation(trainable_users(split.train, model.objective))
    n_batches = -(-len(users) // config.train.batch_size)
    model.train()
    seconds = {variant: [] for variant in variants}
    rows, loss_gap = [], {variant: 0.0 for variant in variants}
    for index in range(steps):
        batch_users = users[index * config.train.batch_size:(index + 1) * config.train.batch_size]
        inputs, targets = training_batch(model, split.train, batch_users, config.train.history_window, rng)
        rows.append(int((targets != 0).sum()))
        if index == 0:  # every variant on identical weights and dropout masks
            losses = {}
            for variant in variants:
                torch.manual_seed(7)
                with torch.no_grad():
                    losses[variant] = float(next_item_step_loss(model, model, inputs, targets, batch_users,
                                                                configs[variant], torch.Generator())[0])
            loss_gap = {variant: abs(losses[variant] - losses[variants[0]]) for variant in variants}
        shift = index % len(variants)
        for variant in variants[shift:] + variants[:shift]:
            started = time.perf_counter()
            step(model, optimizer, inputs, targets, batch_users, configs[variant])
            seconds[variant].append(time.perf_counter() - started)
    return {"dataset": dataset, "model": model_name, "items": data.n_items, "rows_per_step": statistics.mean(rows),
            "batches_per_epoch": n_batches, "loss_gap": loss_gap,
            "seconds": {variant: statistics.median(values) for variant, values in seconds.items()}}


def record_table(results: list[dict], variants: list[str]) -> dict:
    """The measurement table: one row per dataset and model, raw seconds (the report rounds them)."""
    columns = [{"name": "dataset"}, {"name": "model"}, {"name": "items"}, {"name": "target positions per step", "digits": 0},
               *({"name": f"{v} s/step", "digits": 3} for v in variants),
               *({"name": f"{v} speed-up", "digits": 2, "suffix": "×"} for v in variants[1:]),
               *({"name": f"{v} projected epoch s", "digits": 0} for v in variants),
               *({"name": f"{v} loss difference, same weights"} for v in variants[1:])]
    rows = []
    for r in results:
        s = r["seconds"]
        rows.append([r["dataset"], r["model"], r["items"], r["rows_per_step"], *(s[v] for v in variants),
                     *(s[variants[0]] / s[v] for v in variants[1:]), *(s[v] * r["batches_per_epoch"] for v in variants),
                     *(r["loss_gap"][v] for v in variants[1:])])
    return {"title": "Median seconds per training step (forward, loss, backward, Adam step)", "columns": columns,
            "rows": rows, "note": f"Speed-ups are over {variants[0]}; the same batches of epoch 0, every step run with "
                                  "every variant in rotating order; the projected epoch is the median step times the "
                                  "batches of an epoch."}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m"])
    parser.add_argument("--models", nargs="+", default=["sasrec"])
    parser.add_argument("--variants", nargs="+", default=["dense", "chunked"],
                        help="IMPLEMENTATION[:PRECISION]; speed-ups are over the first")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--record", type=Path, default=None,
                        help=f"the record to write (default {DEFAULT_FOLDER.as_posix()}/ce_loss-<variants>.json)")
    args = parser.parse_args()
    variants = args.variants
    results = []
    for dataset in args.datasets:
        for model_name in args.models:
            results.append(measure(dataset, model_name, variants, args.steps, args.threads))
            print(f"{dataset} {model_name}: " + ", ".join(f"{v} {results[-1]['seconds'][v]:.3f} s/step" for v in variants),
                  flush=True)
    name = "ce_loss-" + "-".join(v.replace(":", "_") for v in variants)
    record = build_measurement(name, f"Training step: {' vs '.join(variants)}", [record_table(results, variants)],
                               threads=args.threads, extra={"steps": args.steps})
    publish_measurement(record, args.record)


if __name__ == "__main__":
    main()
