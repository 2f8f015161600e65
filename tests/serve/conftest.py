"""Shared fixtures for the HTTP tests: small trained runs on an ml-100k slice, the app, a live server."""

from __future__ import annotations

import json

import pytest

TINY_RUN = ["data.prepare.min_item_interactions=200", "data.prepare.min_user_interactions=5", "model.hidden=16",
            "model.max_len=20", "model.layers=1", "train.epochs=2", "train.threads=1", "train.progress=false",
            "train.batch_size=256", "embedding.scorer.kind=encoder", "embedding.base.epochs=1"]


@pytest.fixture(scope="session")
def run_folders(tmp_path_factory, data_dir):
    """Four run kinds on ml-100k: a GER run and a LANE run (explainable), the GER run's id-based SASRec
    base run, and the most-popular baseline. About 30 s on one core."""
    from typer.testing import CliRunner

    from lucidrec.cli import app

    root = tmp_path_factory.mktemp("served")
    args = ["train", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--model", "sasrec", "--embedding", "ger",
            "--out", str(root / "ger")]
    for item in [*TINY_RUN, f"embedding.cache_dir={root / 'cache'}"]:
        args += ["--set", item]
    result = CliRunner().invoke(app, args)
    assert result.exit_code == 0, result.output
    base = json.loads((root / "ger" / "ger" / "meta.json").read_text())["base"]["run"]
    result = CliRunner().invoke(app, ["evaluate", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--model", "pop",
                                      "--out", str(root / "pop")])
    assert result.exit_code == 0, result.output
    return {"ger": root / "ger", "sasrec": base, "pop": root / "pop", "lane": train_lane_run(root, data_dir)}


def train_lane_run(root, data_dir):
    """A LANE run on the same slice: five fixed preferences per user (the mock chat model) encoded by a
    16-d hashing encoder, so no language model or sentence encoder is loaded. A few seconds."""
    from lucidrec.data.pipeline import load_split
    from lucidrec.methods.lane import LaneRecipe
    from lucidrec.methods.recipe import RecipeContext
    from lucidrec.train.run import build_config, train_run
    from tests.lane.lane_helpers import HashEncoder, fixed_answer

    prepare = dict(item.split("=") for item in TINY_RUN if item.startswith("data.prepare."))
    config = build_config({
        "data": {"dataset": "ml-100k", "data_dir": str(data_dir),
                 "prepare": {key.rsplit(".", 1)[1]: int(value) for key, value in prepare.items()}},
        "model": {"name": "sasrec", "hidden": 16, "max_len": 20, "layers": 1},
        "embedding": {"name": "lane", "llm": {"backend": "mock", "mode": "fixed", "answer": fixed_answer()},
                      "cache_dir": str(root / "cache")},
        "train": {"epochs": 2, "threads": 1, "progress": False, "batch_size": 256},
    })
    run = root / "lane"
    data, split = load_split(config.data)
    LaneRecipe(encoder=HashEncoder()).prepare(RecipeContext(config, data, split, run))
    assert train_run(config, run)["status"] == "done"
    return run


@pytest.fixture(scope="session")
def served_runs(run_folders):
    from lucidrec.serve.runs import load_served_runs

    return load_served_runs([f"{name}={path}" for name, path in run_folders.items()])


@pytest.fixture(scope="session")
def rec_app(served_runs):
    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig

    return create_app(served_runs, ServeConfig(max_k=50))


@pytest.fixture
def client(rec_app):
    from fastapi.testclient import TestClient

    with TestClient(rec_app) as client:
        yield client


@pytest.fixture(scope="session")
def live_server(rec_app):
    from lucidrec.serve.server import BackgroundServer

    with BackgroundServer(rec_app).start() as server:
        yield server


@pytest.fixture(scope="session")
def interpreter_folder(run_folders, tmp_path_factory):
    """A RecInterpreter adapter (residual task) trained for two steps on the id-based SASRec run, for the
    tiny LM of the interpret tests: the reading is nonsense, but every step of it runs. A few seconds."""
    from pathlib import Path

    from lucidrec.interpret import pipeline
    from lucidrec.interpret.config import InterpretConfig
    from tests.tiny_lm import tiny_soft_lm

    out = tmp_path_factory.mktemp("interpreter") / "sasrec-residual"
    config = InterpretConfig(task="residual", adapter={"init": "random", "hidden": None, "tokens": 1},
                             examples={"per_user": 1}, optim={"max_steps": 2, "batch_size": 4},
                             evaluation={"max_new_tokens": 6})
    result = pipeline.train(Path(run_folders["sasrec"]), out, config, lm=tiny_soft_lm(), progress=False)
    assert result["status"] == "done"
    return out


@pytest.fixture(scope="session")
def read_runs(served_runs, interpreter_folder):
    """The SASRec, GER and most-popular runs again (sharing the loaded models), the interpreter attached to
    the run it was trained on, found among them by its weights and data hash."""
    import dataclasses

    from lucidrec.serve.readings import attach_interpreters
    from tests.tiny_lm import tiny_soft_lm

    runs = {name: dataclasses.replace(served_runs[name]) for name in ("sasrec", "ger", "pop")}
    attach_interpreters(runs, [str(interpreter_folder)], lm=tiny_soft_lm())
    return runs


@pytest.fixture(scope="session")
def read_app(read_runs):
    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig

    return create_app(read_runs, ServeConfig(max_k=50))


@pytest.fixture
def read_client(read_runs):
    """A client of a fresh app over ``read_runs``: its cache of readings starts empty in every test."""
    from fastapi.testclient import TestClient

    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig

    with TestClient(create_app(read_runs, ServeConfig(max_k=50), warm_states_at_start=False)) as client:
        yield client


@pytest.fixture(scope="session")
def read_server(read_app):
    from lucidrec.serve.server import BackgroundServer

    with BackgroundServer(read_app).start() as server:
        yield server
