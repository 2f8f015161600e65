"""The Explainer protocol on real run folders: lucidrec explain picks the explainer from the run."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.explain import Explanation, NotExplainableError, explainer_for
from lucidrec.explain.ger import GERExplainer
from lucidrec.methods import train
from lucidrec.train.run import build_config


def _config(tiny_movies, cache, embedding):
    return build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "sasrec", "hidden": 12, "max_len": 8},
        "embedding": embedding,
        "train": {"epochs": 1, "threads": 1, "progress": False},
    })


def test_a_ger_run_gets_the_ger_explainer_with_reasons_and_a_payload(tmp_path, tiny_movies):
    embedding = {"name": "ger", "attributes": "movies", "scorer": {"kind": "llm", "llm": {"backend": "mock"}},
                 "base": {"epochs": 1}, "cache_dir": str(tmp_path / "cache")}
    run = tmp_path / "ger"
    train(_config(tiny_movies, tmp_path / "cache", embedding), run)
    explainer = explainer_for(run)
    assert isinstance(explainer, GERExplainer)
    result = explainer.explain(run, "u1", k=4, check=True)
    assert isinstance(result, Explanation) and result.check["ok"]
    assert [item.rank for item in result.items] == [1, 2, 3, 4]
    assert [item.item_id for item in result.items] == [entry["item_id"] for entry in result.payload["items"]]
    scores = [item.score for item in result.items]
    assert scores == sorted(scores, reverse=True)
    first = result.payload["items"][0]
    strongest = max(first["contributions"], key=lambda name: abs(first["contributions"][name]))
    assert result.items[0].reasons[0].startswith(strongest)  # the largest contribution is the first reason
    np.testing.assert_allclose(sum(first["contributions"].values()) + first["rest"], first["score"], rtol=1e-5)
    cli = CliRunner().invoke(app, ["explain", "--run", str(run), "--user", "u1", "--k", "4", "--json"])
    assert cli.exit_code == 0, cli.output
    assert json.loads(cli.output)["items"] == result.payload["items"]


def test_a_run_without_an_explainer_is_refused_with_the_explainable_kinds(tmp_path, tiny_movies):
    run = tmp_path / "id"
    train(_config(tiny_movies, tmp_path / "cache", {"name": "id"}), run)
    with pytest.raises(NotExplainableError, match=r"--embedding id have no explainer \(explainable: ger, lane\)"):
        explainer_for(run)
    cli = CliRunner().invoke(app, ["explain", "--run", str(run), "--user", "u1"])
    assert cli.exit_code == 2 and "explainable: ger, lane" in cli.output
