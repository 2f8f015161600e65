"""Time one training step under different loss implementations and precisions, side by side.

Each variant is ``IMPLEMENTATION[:PRECISION]`` of ``train.ce_implementation`` (dense, chunked) and
``train.precision`` (float32, bfloat16). In one process, on the benchmark protocol's model and data
(``bench/protocol.py``): the same batches of epoch 0, each step run with every variant in rotating
order so all see the same machine load. Prints the median seconds per step (forward, loss, backward,
Adam step), the speed-up of each variant over the first, the projected training epoch, and the largest
loss difference from the first variant on identical weights and dropout masks.

    python bench/bench_ce_loss.py --datasets ml-1m amazon-beauty --models sasrec --steps 12 --threads 1
    python bench/bench_ce_loss.py --variants chunked chunked:bfloat16 --datasets ml-1m --steps 30
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lucidrec.data.pipeline import load_split
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m"])
    parser.add_argument("--models", nargs="+", default=["sasrec"])
    parser.add_argument("--variants", nargs="+", default=["dense", "chunked"],
                        help="IMPLEMENTATION[:PRECISION]; speed-ups are over the first")
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    variants = args.variants
    print("| dataset | model | items | target positions per step | "
          + " | ".join(f"{v} s/step" for v in variants) + " | "
          + " | ".join(f"{v} speed-up" for v in variants[1:]) + " | projected epoch (s) | loss difference, same weights |")
    print("|---" * (6 + 2 * len(variants) - 1) + "|")
    for dataset in args.datasets:
        for model_name in args.models:
            r = measure(dataset, model_name, variants, args.steps, args.threads)
            s = r["seconds"]
            print(f"| {dataset} | {model_name} | {r['items']:,} | {r['rows_per_step']:,.0f} | "
                  + " | ".join(f"{s[v]:.3f}" for v in variants) + " | "
                  + " | ".join(f"**{s[variants[0]] / s[v]:.2f}×**" for v in variants[1:]) + " | "
                  + " / ".join(f"{s[v] * r['batches_per_epoch']:.0f}" for v in variants) + " | "
                  + " / ".join(f"{r['loss_gap'][v]:.1e}" for v in variants[1:]) + " |", flush=True)


if __name__ == "__main__":
    main()
