"""A GER run folder written in the flat config shape (before the stage sections) still resumes, loads, is
reused and evaluates: its config.json and its checkpoint's identity go through the one migration."""

from __future__ import annotations

import json

import pytest
import torch

from lucidrec.config import ConfigError, validate_config
from lucidrec.embeddings.ger.config import flat_settings
from lucidrec.methods import status, train, train_or_reuse
from lucidrec.train import checkpoint
from lucidrec.train.run import RunConfig, build_config, evaluate_run, load_run


def _config(tiny_movies, epochs: int) -> RunConfig:
    return build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "sasrec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "attributes": "movies", "scorer": {"kind": "llm", "llm": {"backend": "mock"}},
                      "user": {"window": 5}, "base": {"epochs": 1}, "cache_dir": str(tiny_movies.parent / "cache")},
        "train": {"epochs": epochs, "threads": 1, "progress": False},
    })


def _flat(values: dict) -> dict:
    """A config dump as the flat version wrote it."""
    settings = validate_config(RunConfig, values, "dump").embedding_settings()
    return {**values, "embedding": {"name": "ger", **flat_settings(settings)}}


def _write_flat_config(run) -> dict:
    path = run / "config.json"
    flat = _flat(json.loads(path.read_text()))
    path.write_text(json.dumps(flat))
    return flat


def test_a_flat_run_folder_resumes_loads_is_reused_and_evaluates(tmp_path, tiny_movies):
    config, run = _config(tiny_movies, epochs=2), tmp_path / "run"
    assert train(config, run, stop_after_epochs=1)["status"] == "interrupted"
    flat = _write_flat_config(run)
    assert flat["embedding"]["user_window"] == 5 and flat["embedding"]["scorer"] == "llm"
    payload = checkpoint.read(run)
    payload["identity"]["config"] = _flat(payload["identity"]["config"])
    torch.save(payload, run / checkpoint.LAST)
    with pytest.raises(ConfigError):  # what the migration is for: the flat shape alone no longer validates
        validate_config(RunConfig, flat, "flat")

    assert [s.state.value for s in status(run)][:2] == ["done", "done"]  # stages read through the migration
    assert train(config, run, resume=True)["status"] == "done"  # the checkpoint's flat identity matches
    _write_flat_config(run)
    best = (run / checkpoint.BEST).stat().st_mtime_ns

    model, _, _, loaded = load_run(run)
    assert loaded == config and loaded.embedding_settings().user.window == 5
    reused = train_or_reuse(config, run)
    assert reused["status"] == "done" and (run / checkpoint.BEST).stat().st_mtime_ns == best  # not retrained
    again = evaluate_run(run, out=tmp_path / "eval")
    assert again["test/full/ndcg@10"] == pytest.approx(reused["test/full/ndcg@10"])
