"""The training protocol the benchmarks share, for the measurement scripts that build a model themselves.

These are the settings of the tuned id baselines of ``bench/grids/backbones.toml``: cross-entropy over the
catalog, patience 15 on validation NDCG@10, hidden 64, batch 128, Adam lr 1e-3, and per dataset the sequence
length and dropout that worked there. ``bench/bench_ce_loss.py`` and ``bench/bench_padding_loss.py`` time
training steps of models built from them; the grid files state the same values in their ``[config]`` and
``[dataset_settings]`` tables.
"""

from __future__ import annotations

#: Per-dataset model settings of the tuned id baselines (others: max_len 50, dropout 0.5).
DATASET_MODEL = {"ml-1m": {"max_len": 200, "dropout": 0.2}, "amazon-beauty": {"max_len": 50, "dropout": 0.5}}
DEFAULT_MODEL = {"max_len": 50, "dropout": 0.5}


def run_values(dataset: str, model: str, seed: int, embedding: dict, *, epochs: int = 200, patience: int = 15,
               hidden: int = 64, batch_size: int = 128, loss: str = "ce", threads: int = 1,
               data_dir: str | None = None, progress: bool = False, ks: list[int] | None = None) -> dict:
    """The run config (as plain values) of one benchmark model."""
    values = {
        "data": {"dataset": dataset, **({"data_dir": data_dir} if data_dir else {})},
        "model": {"name": model, "hidden": hidden, **DATASET_MODEL.get(dataset, DEFAULT_MODEL)},
        "embedding": embedding,
        "train": {"epochs": epochs, "patience": patience, "seed": seed, "batch_size": batch_size, "loss": loss,
                  "threads": threads, "progress": progress},
    }
    if ks:
        values["eval"] = {"ks": ks}
    return values
