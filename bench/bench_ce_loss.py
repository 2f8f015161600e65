"""Time one training step with the full-softmax loss computed densely vs chunk by chunk.

Side by side in one process, on the benchmark protocol's model and data (``bench/protocol.py``): the
same batches of epoch 0, each step run with both implementations in alternation so both see the same
machine load. Prints the median seconds per step (forward, loss, backward, Adam step), their ratio,
the projected training epoch, and the largest loss difference on identical weights.

    python bench/bench_ce_loss.py --datasets ml-1m amazon-beauty --models sasrec --steps 12 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from lucidrec.data.pipeline import load_split
from lucidrec.train.batches import trainable_users, training_batch
from lucidrec.train.losses import next_item_loss
from lucidrec.train.run import build_config, build_model
from protocol import run_values

IMPLEMENTATIONS = ("dense", "chunked")


def step(model, optimizer, inputs, targets, users, implementation, config) -> float:
    states = model(inputs, torch.as_tensor(users))
    where = targets != 0
    loss = next_item_loss("ce", states[where], targets[where], model.items, model.n_items,
                          config.train.n_negatives, torch.Generator().manual_seed(0), implementation)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    optimizer.step()
    return float(loss.detach())


def measure(dataset: str, model_name: str, steps: int, threads: int) -> dict:
    torch.set_num_threads(threads)
    config = build_config(run_values(dataset, model_name, seed=1, embedding={"name": "id"}, threads=threads))
    data, split = load_split(config.data)
    torch.manual_seed(1)
    model = build_model(config, data, split)
    optimizer = torch.optim.Adam(model.parameters(), lr=config.train.lr)
    rng = np.random.default_rng(1)
    users = rng.permutation(trainable_users(split.train, model.objective))
    n_batches = -(-len(users) // config.train.batch_size)
    model.train()
    seconds = {name: [] for name in IMPLEMENTATIONS}
    rows, loss_gap = [], 0.0
    for index in range(steps):
        batch_users = users[index * config.train.batch_size:(index + 1) * config.train.batch_size]
        inputs, targets = training_batch(model, split.train, batch_users, config.train.history_window, rng)
        rows.append(int((targets != 0).sum()))
        if index == 0:  # both implementations on identical weights and dropout masks
            losses = []
            for name in IMPLEMENTATIONS:
                torch.manual_seed(7)
                with torch.no_grad():
                    states = model(inputs, torch.as_tensor(batch_users))
                    where = targets != 0
                    losses.append(float(next_item_loss("ce", states[where], targets[where], model.items, model.n_items,
                                                       1, torch.Generator(), name)))
            loss_gap = abs(losses[0] - losses[1])
        order = IMPLEMENTATIONS if index % 2 == 0 else IMPLEMENTATIONS[::-1]
        for name in order:
            started = time.perf_counter()
            step(model, optimizer, inputs, targets, batch_users, name, config)
            seconds[name].append(time.perf_counter() - started)
    median = {name: statistics.median(values) for name, values in seconds.items()}
    return {"dataset": dataset, "model": model_name, "items": data.n_items, "rows_per_step": statistics.mean(rows),
            "steps": steps, "batches_per_epoch": n_batches, "loss_gap": loss_gap, **{f"{k}_s": v for k, v in median.items()}}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=["ml-1m"])
    parser.add_argument("--models", nargs="+", default=["sasrec"])
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    print("| dataset | model | items | target positions per step | dense s/step | chunked s/step | speed-up "
          "| projected epoch dense / chunked (s) | loss difference, same weights |")
    print("|---|---|---|---|---|---|---|---|---|")
    for dataset in args.datasets:
        for model_name in args.models:
            r = measure(dataset, model_name, args.steps, args.threads)
            print(f"| {dataset} | {model_name} | {r['items']:,} | {r['rows_per_step']:,.0f} | {r['dense_s']:.3f} "
                  f"| {r['chunked_s']:.3f} | {r['dense_s'] / r['chunked_s']:.2f}× "
                  f"| {r['dense_s'] * r['batches_per_epoch']:.0f} / {r['chunked_s'] * r['batches_per_epoch']:.0f} "
                  f"| {r['loss_gap']:.1e} |", flush=True)


if __name__ == "__main__":
    main()
