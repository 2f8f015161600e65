"""An LLM stage that did not get its answers never reports success: the run stops with an error naming
the model and the count, unless the user allowed a share of fallbacks; answers received stay cached."""

from __future__ import annotations

import json
import socket

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.embeddings.ger.attributes import resolve_attributes
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.lm.failures import LLMStageError
from lucidrec.methods import train as train_run  # GER's recipe (scoring) first, like lucidrec train
from lucidrec.methods.ger import scorers
from lucidrec.train.run import build_config

NAMES = resolve_attributes("movies", "tiny-films").names


def _closed_port() -> int:
    with socket.socket() as probe:  # bound, then closed: nothing listens there
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_an_endpoint_that_refuses_every_connection_stops_the_run(tmp_path, tiny_movies):
    url = f"http://127.0.0.1:{_closed_port()}/v1"
    config = tmp_path / "run.toml"
    config.write_text(f"""
[model]
name = "gru4rec"
hidden = 12
max_len = 8

[embedding]
name = "ger"
mode = "guided"
attributes = "movies"
cache_dir = "{tmp_path / 'cache'}"

[embedding.scorer]
kind = "llm"
llm = {{ backend = "openai", base_url = "{url}", model = "scorer-model", max_retries = 0, show_progress = false }}

[train]
epochs = 1
threads = 1
progress = false
""")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--dataset", "tiny-films", "--data-dir", str(tiny_movies),
                                      "--config", str(config), "--out", str(out)])
    assert result.exit_code == 2, result.output
    assert "GER item scoring: 14 of 14 items got no score" in result.output
    assert f"scorer-model at {url}" in result.output and "cannot reach" in result.output
    assert "Nothing was answered: check that" in result.output
    assert not (out / "metrics.json").exists() and not (out / "ger" / "meta.json").exists()


def _config(tmp_path, tiny_movies, **embedding):
    return build_config({
        "data": {"dataset": "tiny-films", "data_dir": str(tiny_movies)},
        "model": {"name": "gru4rec", "hidden": 12, "max_len": 8},
        "embedding": {"name": "ger", "mode": "guided", "attributes": "movies", "cache_dir": str(tmp_path / "cache"),
                      **embedding,
                      "scorer": {"kind": "llm", "method": "json", "llm": {"backend": "mock", "show_progress": False},
                                 **embedding.get("scorer", {})}},
        "train": {"epochs": 1, "threads": 1, "progress": False},
    })


def _mock(monkeypatch, tmp_path, refuse: tuple[str, ...], template: str = "ger_item_scores"):
    """A mock LLM answering valid JSON, except for prompts of ``template`` that contain one of ``refuse``."""
    chat = MockChatModel(responder=lambda request: _answer(request, refuse, template),
                         cache={"dir": tmp_path / "cache"}, show_progress=False)
    monkeypatch.setattr(scorers, "create_chat", lambda llm, cache_dir: chat)
    return chat


def _answer(request, refuse, template):
    text = request.messages[-1]["content"]
    if request.template.name == template and any(word in text for word in refuse):
        raise ConnectionError("connection refused")
    return json.dumps({name: 5 for name in NAMES})


def test_items_left_without_a_score_stop_the_run_and_a_rerun_asks_only_for_them(tmp_path, tiny_movies, monkeypatch):
    config = _config(tmp_path, tiny_movies)
    _mock(monkeypatch, tmp_path, refuse=("Film number 3", "Film number 7"))
    with pytest.raises(LLMStageError, match=r"GER item scoring: 2 of 14 items got no score from mock model mock "
                                            r"after retries \(first error: ConnectionError: connection refused\)"):
        train_run(config, tmp_path / "run")
    chat = _mock(monkeypatch, tmp_path, refuse=())
    assert train_run(config, tmp_path / "run")["status"] == "done"
    assert chat.calls == 2  # the 12 answers of the failed run were cached


def test_a_share_of_fallbacks_allowed_by_the_user_goes_on_and_is_recorded(tmp_path, tiny_movies, monkeypatch):
    _mock(monkeypatch, tmp_path, refuse=("Film number 3",))
    with pytest.raises(LLMStageError, match="1 of 14 items"):
        train_run(_config(tmp_path, tiny_movies, scorer={"max_failed": 0.05}), tmp_path / "strict")
    run = tmp_path / "lenient"
    assert train_run(_config(tmp_path, tiny_movies, scorer={"max_failed": 0.1}), run)["status"] == "done"
    meta = json.loads((run / "ger" / "meta.json").read_text())
    assert meta["scoring"]["failures"] == 1 and meta["items"]["without_score"] == 2  # + the item without text


def test_users_left_without_a_prior_stop_the_run(tmp_path, tiny_movies, monkeypatch):
    _mock(monkeypatch, tmp_path, refuse=("Film number 0",), template="ger_user_scores")  # histories holding film 0
    with pytest.raises(LLMStageError, match=r"GER user scoring: \d+ of 12 users got no score"):
        train_run(_config(tmp_path, tiny_movies, user={"init": "llm"}), tmp_path / "run")
