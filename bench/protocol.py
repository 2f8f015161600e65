"""The training protocol every benchmark shares, so method runs are paired with the same id baseline.

These are the settings of the backbone issue's tuned runs (``bench/backbones.sh``): cross-entropy
over the catalog, patience 15 on validation NDCG@10, hidden 64, batch 128, Adam lr 1e-3, and per
dataset the sequence length and dropout that worked there. The method benchmarks (LLMEmb, GER) only
swap the ``embedding`` section, so with one ``--out`` they reuse the very same id runs:
``<out>/<dataset>/<model>/<variant>/seed<k>/``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

#: Per-dataset model settings of the tuned id baselines (others: max_len 50, dropout 0.5).
DATASET_MODEL = {"ml-1m": {"max_len": 200, "dropout": 0.2}, "amazon-beauty": {"max_len": 50, "dropout": 0.5}}
DEFAULT_MODEL = {"max_len": 50, "dropout": 0.5}
DEFAULT_SEEDS = (1, 2, 3)
BASELINE = "id"


def run_values(dataset: str, model: str, seed: int, embedding: dict, *, epochs: int = 200, patience: int = 15,
               hidden: int = 64, batch_size: int = 128, loss: str = "ce", threads: int = 1,
               data_dir: str | None = None, progress: bool = False, ks: list[int] | None = None) -> dict:
    """The run config (as plain values) of one benchmark cell."""
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


def run_dir(out: Path, dataset: str, model: str, variant: str, seed: int) -> Path:
    return Path(out) / dataset / model / variant / f"seed{seed}"


def add_overrides_argument(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="extra setting for every run, e.g. --set model.max_len=50 (embedding.* keys only reach "
                             "the method variants; a changed setting needs its own --out)")


def overrides_for(overrides: list[str], variant: str) -> list[str]:
    """The ``--set`` values of one run: embedding.* keys belong to the method under test, so the id
    baseline, whose folder every method benchmark shares, never sees them."""
    return [o for o in overrides if variant != BASELINE or not o.startswith("embedding.")]
