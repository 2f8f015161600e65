"""Grid files on a synthetic dataset, and hand-made result records, for the experiment tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from lucidrec.eval.metrics import per_user_metrics
from lucidrec.experiments.records import FORMAT, pack_ints, pack_mask, users_digest, write_record

TINY_CONFIG = """
[config]
model = { hidden = 16, max_len = 10 }
train = { epochs = 2, batch_size = 64 }
"""


def write_grid(folder: Path, body: str, name: str = "tiny", config: str = TINY_CONFIG) -> Path:
    path = Path(folder) / f"{name}.toml"
    path.write_text(f'name = "{name}"\n' + body + config)
    return path


def make_record(dataset: str, model: str, embedding: str | None, seed: int | None, ranks, groups=None,
                variant: str = "default", data_hash: str = "h1", curve=None) -> dict:
    """A record as ``build_record`` writes it, for given test ranks: metrics are the per-user means."""
    ranks = np.asarray(ranks)
    groups = groups or {}
    metrics = {}
    for name, values in per_user_metrics(ranks, (10,)).items():
        metrics[f"test/full/{name}"] = float(values.mean())
        for group, mask in groups.items():
            metrics[f"test/full/{group}/{name}"] = float(values[mask].mean())
    metrics["test/full/n_users"] = len(ranks)
    for group, mask in groups.items():
        metrics[f"test/full/{group}/n_users"] = int(mask.sum())
    label = "/".join([model] + ([embedding] if embedding else []) + ([variant] if variant != "default" else []))
    return {"format": FORMAT,
            "cell": {"dataset": dataset, "model": model, "embedding": embedding, "variant": variant, "seed": seed,
                     "label": label, "run": "runs/x"},
            "config": {"model": {"name": model}}, "data_hash": data_hash, "metrics": metrics,
            "timings": {"cell_seconds": 10.0, "seconds_per_epoch": 1.0}, "curve": curve or [],
            "machine": {"cpus": 2},
            "per_user": {"n": len(ranks), "users": users_digest(np.arange(len(ranks))),
                         "ranks": {"full": pack_ints(ranks)},
                         "groups": {g: pack_mask(m) for g, m in groups.items()}}}


def save(results: Path, record: dict) -> Path:
    cell = record["cell"]
    slug = "__".join(str(p) for p in (cell["dataset"], cell["model"], cell["embedding"], cell["variant"], cell["seed"]))
    return write_record(results, slug, record)
