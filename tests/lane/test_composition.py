"""LANE's head over another run's item table (``embedding.item_table = RUN``): e.g. an LLMEmb or GER run's."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lucidrec.config import ConfigError
from lucidrec.data.pipeline import load_split
from lucidrec.embeddings.lane.table import reduced_table
from lucidrec.methods.lane import LaneRecipe
from lucidrec.methods.recipe import RecipeContext
from lucidrec.train.run import build_config, build_model, load_run, train_run

from lane_helpers import fixed_answer  # noqa: E402  (tests/lane/conftest.py)


def _config(titled_films, cache, hidden, embedding=None, epochs=1):
    return build_config({
        "data": {"dataset": "titled-films", "data_dir": str(titled_films)},
        "model": {"name": "sasrec", "hidden": hidden, "max_len": 8},
        "embedding": embedding or {"name": "id"},
        "train": {"epochs": epochs, "threads": 1, "progress": False},
    })


def _lane(titled_films, cache, hidden, **options):
    return _config(titled_films, cache, hidden, {"name": "lane", "cache_dir": str(cache), "llm": {
        "backend": "mock", "mode": "fixed", "answer": fixed_answer()}, **options})


@pytest.fixture
def id_run(tmp_path, titled_films):
    run = tmp_path / "id-run"
    assert train_run(_config(titled_films, tmp_path / "cache", hidden=24), run)["status"] == "done"
    return run


def _initial_table(config, run, encoder):
    data, split = load_split(config.data)
    LaneRecipe(encoder=encoder).prepare(RecipeContext(config, data, split, run))
    return build_model(config, data, split, run).items.weight.detach().numpy()


def test_the_table_starts_from_another_runs_item_table(tmp_path, titled_films, hash_encoder, id_run):
    given = np.load(id_run / "item_table.npy")
    same_width = _initial_table(_lane(titled_films, tmp_path / "cache", 24, item_table=str(id_run)),
                                tmp_path / "lane", hash_encoder)
    assert np.array_equal(same_width, given)  # wins over the titles' vectors (16-d with this encoder)
    narrow = _initial_table(_lane(titled_films, tmp_path / "cache", 8, item_table=str(id_run / "item_table.npy"),
                                  pca_dim=8), tmp_path / "lane8", hash_encoder)
    assert np.allclose(narrow, reduced_table(given, 8), atol=1e-6)
    config = _lane(titled_films, tmp_path / "cache", 8, item_table=str(id_run), pca_dim=8)
    assert train_run(config, tmp_path / "lane8")["status"] == "done"
    model, *_ = load_run(tmp_path / "lane8")
    assert model.items.weight.shape == (len(given), 8) and model.state_hook.mask.any()


def test_a_table_of_other_items_or_width_is_refused(tmp_path, titled_films, hash_encoder, id_run):
    with pytest.raises(ConfigError, match="model.hidden is 16"):
        _initial_table(_lane(titled_films, tmp_path / "cache", 16, item_table=str(id_run)), tmp_path / "a",
                       hash_encoder)
    short = tmp_path / "short.npy"
    np.save(short, np.zeros((5, 16), np.float32))
    with pytest.raises(ConfigError, match=r"short.npy has shape \(5, 16\)"):
        _initial_table(_lane(titled_films, tmp_path / "cache", 16, item_table=str(short)), tmp_path / "b", hash_encoder)
    ids = json.loads((id_run / "item_ids.json").read_text())
    (id_run / "item_ids.json").write_text(json.dumps([ids[0], *reversed(ids[1:])]))
    with pytest.raises(ConfigError, match="item_ids.json lists other items"):
        _initial_table(_lane(titled_films, tmp_path / "cache", 24, item_table=str(id_run)), tmp_path / "c",
                       hash_encoder)
    with pytest.raises(ConfigError, match="not found"):
        _initial_table(_lane(titled_films, tmp_path / "cache", 24, item_table=str(tmp_path / "nowhere")),
                       tmp_path / "d", hash_encoder)
