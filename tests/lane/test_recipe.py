"""The LANE recipe: item_table -> preferences -> aligned_run, the semantic item table, and the CLI."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError
from lucidrec.data.pipeline import load_split
from lucidrec.files import read_json
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.methods import StageState, status
from lucidrec.methods.lane import LaneRecipe
from lucidrec.methods.lane.extraction import history_titles, item_titles
from lucidrec.methods.recipe import RecipeContext
from lucidrec.train.run import build_config, load_run, train_run

from lane_helpers import fixed_answer  # noqa: E402  (tests/lane/conftest.py)


def _config(titled_films, cache, hidden=16, **embedding):
    return build_config({
        "data": {"dataset": "titled-films", "data_dir": str(titled_films)},
        "model": {"name": "sasrec", "hidden": hidden, "max_len": 8},
        "embedding": {"name": "lane", "llm": {"backend": "mock", "mode": "fixed", "answer": fixed_answer()},
                      "cache_dir": str(cache), **embedding},
        "train": {"epochs": 1, "threads": 1, "progress": False},
    })


def _prepare(config, run, encoder, chat=None):
    data, split = load_split(config.data)
    LaneRecipe(encoder=encoder, chat=chat).prepare(RecipeContext(config, data, split, run))
    return data, split


def test_the_recipe_prompts_with_the_training_part_only(tmp_path, titled_films, hash_encoder):
    chat = MockChatModel(responder=lambda request: fixed_answer(), cache={"dir": str(tmp_path / "cache")})
    data, split = _prepare(_config(titled_films, tmp_path / "cache"), tmp_path / "run", hash_encoder, chat)
    titles = item_titles(data)
    prompts = {r.last_user_message() for r in chat.seen}
    for user in range(data.n_users):
        shown = "\n".join(f"- {t}" for t in history_titles(split.train, user, titles, 200))
        full = "\n".join(f"- {t}" for t in history_titles(data.sequences, user, titles, 200))
        assert any(shown + "\n\n" in p for p in prompts)
        if len(split.train[user]) < len(data.sequences[user]):
            assert not any(full in p for p in prompts), f"user {user}: a held-out title reached a prompt"


def test_item_table_keeps_ids_and_counts_items_without_title(tmp_path, titled_films, hash_encoder):
    config = _config(titled_films, tmp_path / "cache")
    data, _ = _prepare(config, tmp_path / "run", hash_encoder)
    stored = np.load(tmp_path / "run" / "lane" / "items.npz")
    info = read_json(tmp_path / "run" / "lane" / "items.json")
    titles = item_titles(data)
    no_title = [i for i in range(1, data.n_items + 1) if not titles[i]]
    assert len(no_title) == 1 and info["items_without_title"] == 1 and info["items_with_title"] == data.n_items - 1
    assert not stored["vectors"][0].any() and not stored["has_title"][no_title[0]]
    for i in range(1, data.n_items + 1):
        if titles[i]:
            assert np.allclose(stored["vectors"][i], hash_encoder.encode([titles[i]])[0])
    assert np.isclose(np.linalg.norm(stored["vectors"][no_title[0]]), 1.0)
    # The run's trainable table starts from these vectors.
    run = train_run(config, tmp_path / "run")
    assert run["status"] == "done"
    model, *_ = load_run(tmp_path / "run")
    table = model.items.weight
    assert table.requires_grad and table.shape == (data.n_items + 1, 16)
    assert not torch.allclose(table.detach(), torch.from_numpy(stored["vectors"]))  # trained from there


def test_a_run_needs_the_encoder_width(tmp_path, titled_films, hash_encoder):
    config = _config(titled_films, tmp_path / "cache", hidden=32)
    _prepare(config, tmp_path / "run", hash_encoder)
    with pytest.raises(ConfigError, match="set model.hidden = 16"):
        train_run(config, tmp_path / "run")


def test_pca_dim_fits_a_narrow_backbone_and_keeps_the_title_geometry(tmp_path, titled_films, hash_encoder):
    config = _config(titled_films, tmp_path / "cache", hidden=8, pca_dim=8)
    _prepare(config, tmp_path / "run", hash_encoder)
    stored = np.load(tmp_path / "run" / "lane" / "items.npz")["vectors"]
    assert train_run(config, tmp_path / "run")["status"] == "done"
    from lucidrec.embeddings.lane.table import reduced_table

    reduced = reduced_table(stored, 8)
    assert reduced.shape == (len(stored), 8) and not reduced[0].any()
    # Rescaled to the encoder rows' mean norm; distances between items are those of the PCA projection.
    assert np.isclose(np.linalg.norm(reduced[1:], axis=1).mean(), np.linalg.norm(stored[1:], axis=1).mean(), rtol=1e-4)
    centred = stored[1:] - stored[1:].mean(axis=0)
    top = np.linalg.svd(centred, full_matrices=False)[2][:8]
    projected = centred @ top.T
    ratio = np.linalg.norm(reduced[1:], axis=1) / np.maximum(np.linalg.norm(projected, axis=1), 1e-12)
    assert np.allclose(ratio, ratio[0], rtol=1e-3)
    with pytest.raises(ConfigError, match="pca_dim = 99 exceeds the encoder's width 16"):
        reduced_table(stored, 99)


def test_the_embedding_alone_refuses_a_run_the_recipe_did_not_prepare(tmp_path, titled_films):
    with pytest.raises(ConfigError, match="no LANE item table for this config"):
        train_run(_config(titled_films, tmp_path / "cache"), tmp_path / "run")


def test_status_follows_the_stages_and_a_prepared_stage_is_reused(tmp_path, titled_films, hash_encoder):
    config = _config(titled_films, tmp_path / "cache")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config.model_dump(mode="json")))
    assert {s.name: s.state for s in status(run)} == {"item_table": StageState.MISSING,
                                                      "preferences": StageState.MISSING,
                                                      "aligned_run": StageState.MISSING}
    chat = MockChatModel(responder=lambda request: fixed_answer(), cache={"enabled": False})
    _prepare(config, run, hash_encoder, chat)
    assert [s.state for s in status(run)] == [StageState.DONE, StageState.DONE, StageState.MISSING]
    before = chat.calls
    _prepare(config, run, hash_encoder, chat)
    assert chat.calls == before  # nothing asked again
    other = _config(titled_films, tmp_path / "cache", n_preferences=3)
    (run / "config.json").write_text(json.dumps(other.model_dump(mode="json")))
    assert [s.state for s in status(run)][:2] == [StageState.DONE, StageState.MISSING]


def test_recorded_preferences_are_labelled_as_possibly_leaking(tmp_path, titled_films, hash_encoder):
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"user_id": "u0", "preference": "User prefers long quiet films, films about the sea."}\n')
    config = _config(titled_films, tmp_path / "cache", source="recorded", recorded_path=str(path))
    _prepare(config, tmp_path / "run", hash_encoder)
    meta = read_json(tmp_path / "run" / "lane" / "preferences.json")
    assert meta["possible_test_leakage"] is True and meta["counts"]["recorded"] == 1
    lines = [json.loads(line) for line in (tmp_path / "run" / "lane" / "preferences.jsonl").read_text().splitlines()]
    assert {"user_id": "u0", "source": "recorded", "phrases": ["long quiet films", "films about the sea"]} in lines


def test_a_relative_recorded_path_is_found_in_the_dataset_folder(tmp_path, titled_films, hash_encoder):
    (titled_films / "titled-films" / "llm").mkdir()
    (titled_films / "titled-films" / "llm" / "prefs.jsonl").write_text('{"user_id": "u1", "preference": "sea films"}\n')
    config = _config(titled_films, tmp_path / "cache", source="recorded", recorded_path="llm/prefs.jsonl")
    _prepare(config, tmp_path / "run", hash_encoder)
    assert read_json(tmp_path / "run" / "lane" / "preferences.json")["counts"]["recorded"] == 1


def test_lucidrec_train_embedding_lane_end_to_end(tmp_path, titled_films):
    """The whole chain from the command line, with the real sentence encoder and the mock chat model."""
    config = tmp_path / "lane.toml"
    config.write_text(f"""
[data]
dataset = "titled-films"
data_dir = "{titled_films}"
[model]
name = "gru4rec"
hidden = 384
max_len = 8
[embedding]
name = "lane"
cache_dir = "{tmp_path / 'cache'}"
llm = {{ backend = "mock", mode = "fixed", answer = '{fixed_answer()}' }}
[train]
epochs = 1
threads = 1
progress = false
""")
    runner = CliRunner()
    result = runner.invoke(app, ["train", "--config", str(config), "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    assert [s.state for s in status(tmp_path / "run")] == [StageState.DONE] * 3
    model, _, split, _ = load_run(tmp_path / "run")
    hook = model.state_hook
    assert type(hook).__name__ == "PreferenceAlignment" and hook.mask.any(dim=1).all()
    states = model.user_vectors(split.test.history.take(np.arange(2)), split.test.users[:2])
    assert states.shape == (2, 384) and hook.last_weights.shape == (2, 5)
