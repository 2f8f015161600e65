"""Building a GER run end to end with a mock LLM (logprobs items, LLM user priors) on a tiny dataset."""

import json

import numpy as np
import pytest

from lucidrec.methods import train as train_method
from lucidrec.train.run import build_config, load_run


def test_llm_scored_ger_run_with_user_priors_and_reload_without_rescoring(tmp_path, tiny_movies):
    cache = tmp_path / "cache"
    config = build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "gru4rec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "attributes": "movies", "scorer": {"kind": "llm", "llm": {"backend": "mock"}},
                      "user": {"init": "llm"}, "base": {"epochs": 1}, "cache_dir": str(cache)},
        "train": {"epochs": 2, "threads": 1, "progress": False},
    })
    run = tmp_path / "run"
    assert train_method(config, run)["status"] == "done"
    meta = json.loads((run / "ger" / "meta.json").read_text())
    assert meta["scoring"]["scorer"] == "llm:logprobs" and meta["scoring"]["prompts"] == 14 * 8
    assert meta["items"] == {"n": 15, "without_text": 1, "without_score": 1, "fallback": "z = 0 (the attribute mean)"}
    assert meta["user_scoring"]["users_without_prior"] == 0
    with np.load(run / "ger" / "state.npz") as state:
        z = state["guided"][1:]
        missing = state["missing"]
        assert missing.sum() == 1 and np.all(z[missing] == 0)
        np.testing.assert_allclose(z[~missing].mean(axis=0), 0, atol=1e-5)
        np.testing.assert_allclose(z[~missing].std(axis=0), 1, atol=1e-4)
        assert not np.isnan(state["user_prior"]).any()
    written = (run / "ger" / "meta.json").stat().st_mtime_ns
    import shutil

    shutil.rmtree(cache / "llm")  # the run folder alone must be enough to rebuild the model
    model, data, _, _ = load_run(run)
    assert (run / "ger" / "meta.json").stat().st_mtime_ns == written
    assert model.state_hook.has_prior.all() and model.items.m == 8 and model.items.mode == "refined"


def test_a_scores_file_without_raw_scores_is_named(tmp_path, tiny_movies):
    from lucidrec.errors import DataFormatError

    np.savez(tmp_path / "scores.npz", other=np.zeros((15, 8)))
    config = build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "gru4rec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "attributes": "movies", "scorer": {"scores_path": str(tmp_path / "scores.npz")},
                      "base": {"epochs": 1}, "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 1, "threads": 1, "progress": False},
    })
    with pytest.raises(DataFormatError, match=r"scores.npz.*no 'raw' array \(has: other\)"):
        train_method(config, tmp_path / "run")


def test_ger_trains_in_bfloat16(tmp_path, tiny_movies):
    # The guided user block and its hook run inside the autocast backbone; the refined table stays float32.
    config = build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "sasrec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "attributes": "movies", "scorer": {"kind": "llm", "llm": {"backend": "mock"}},
                      "base": {"epochs": 1}, "cache_dir": str(tmp_path / "cache")},
        "train": {"epochs": 2, "threads": 1, "progress": False, "loss": "ce", "precision": "bfloat16"},
    })
    metrics = train_method(config, tmp_path / "run")
    assert np.isfinite(metrics["test/full/ndcg@10"])
    assert np.load(tmp_path / "run" / "item_table.npy").dtype == np.float32
