"""Method recipes: stages in order, each reported as done, partial, missing or not needed, and reused."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError
from lucidrec.methods import StageState, prepare, status, train
from lucidrec.train.run import build_config, train_run


def _ger(tiny_movies, cache, **embedding):
    return build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "sasrec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "attributes": "movies", "scorer": {"kind": "llm", "llm": {"backend": "mock"}},
                      "base": {"epochs": 1}, "cache_dir": str(cache), **embedding},
        "train": {"epochs": 1, "threads": 1, "progress": False},
    })


def _states(stages) -> dict[str, StageState]:
    return {stage.name: stage.state for stage in stages}


def test_ger_status_follows_the_stages_and_a_second_run_reuses_the_base(tmp_path, tiny_movies):
    config = _ger(tiny_movies, tmp_path / "cache")
    run = tmp_path / "run"
    run.mkdir()
    (run / "config.json").write_text(json.dumps(config.model_dump(mode="json")))
    assert _states(status(run)) == {"base_run": StageState.MISSING, "attribute_scores": StageState.MISSING,
                                    "refined_run": StageState.MISSING}
    prepare(config, run)  # every stage before the run itself
    assert _states(status(run)) == {"base_run": StageState.DONE, "attribute_scores": StageState.DONE,
                                    "refined_run": StageState.MISSING}
    assert train(config, tmp_path / "other")["status"] == "done"
    other = _states(status(tmp_path / "other"))
    assert other == {"base_run": StageState.DONE, "attribute_scores": StageState.DONE, "refined_run": StageState.DONE}
    guided = _ger(tiny_movies, tmp_path / "cache", mode="guided")
    assert train(guided, tmp_path / "guided")["status"] == "done"
    assert _states(status(tmp_path / "guided"))["base_run"] == StageState.SKIPPED


def test_a_run_killed_after_its_stages_is_partial_and_resumes(tmp_path, tiny_movies):
    config = _ger(tiny_movies, tmp_path / "cache")
    config.train.epochs = 2
    run = tmp_path / "run"
    assert train(config, run, stop_after_epochs=1)["status"] == "interrupted"
    assert _states(status(run))["refined_run"] == StageState.PARTIAL
    assert train(config, run, resume=True)["status"] == "done"
    assert _states(status(run))["refined_run"] == StageState.DONE


def test_the_embedding_alone_refuses_a_run_the_recipe_did_not_prepare(tmp_path, tiny_movies):
    with pytest.raises(ConfigError, match="no GER state for this config"):
        train_run(_ger(tiny_movies, tmp_path / "cache"), tmp_path / "run")


def test_method_status_command(tmp_path, tiny_movies):
    config = _ger(tiny_movies, tmp_path / "cache")
    train(config, tmp_path / "run")
    runner = CliRunner()
    result = runner.invoke(app, ["method", "status", str(tmp_path / "run"), "--json"])
    assert result.exit_code == 0, result.output
    assert [(s["stage"], s["state"]) for s in json.loads(result.output)] == [
        ("base_run", "done"), ("attribute_scores", "done"), ("refined_run", "done")]
    text = runner.invoke(app, ["method", "status", str(tmp_path / "run")]).output
    assert text.splitlines()[0].split()[:2] == ["base_run", "done"]
    missing = runner.invoke(app, ["method", "status", str(tmp_path / "nothing")])
    assert missing.exit_code == 2 and "not a run folder" in missing.output
