"""The resume invariant, checked one way for every trainer: kill after some epochs, resume, compare."""

from __future__ import annotations

import json

import torch

from lucidrec.methods import train as train_run  # a method's recipe first, like lucidrec train


def assert_resume_equals_uninterrupted(config, root, stop_after_epochs: int) -> None:
    straight = train_run(config, root / "straight")
    assert train_run(config, root / "killed", stop_after_epochs=stop_after_epochs)["status"] == "interrupted"
    resumed = train_run(config, root / "killed", resume=True)
    keys = [k for k in straight if k.startswith(("test/", "valid/"))]
    assert keys and all(straight[k] == resumed[k] for k in keys)
    a = torch.load(root / "straight" / "best.pt", weights_only=True)["model"]
    b = torch.load(root / "killed" / "best.pt", weights_only=True)["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert _epochs(root / "killed") == _epochs(root / "straight")  # each epoch logged once, same values


def _epochs(run) -> list[tuple]:
    lines = (run / "log.jsonl").read_text().splitlines()
    return [(r["epoch"], r["loss"], r["valid_ndcg10"]) for r in map(json.loads, lines)]
