"""The LANE explainer: the weights it shows are the ones that made the scores, the chain-of-thought
prompt carries them, and ``lucidrec explain`` prints them."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.data.sequences import Ragged
from lucidrec.explain import explainer_for
from lucidrec.explain.lane import LaneExplainer
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.train.run import load_run

from lane_helpers import PREFERENCES, fixed_answer  # noqa: E402  (tests/lane/conftest.py)


def test_the_weights_shown_are_the_ones_that_made_the_scores(lane_run):
    chat = MockChatModel(mode="echo", cache={"enabled": False})
    loaded = load_run(lane_run)
    model, data = loaded[0], loaded[1]
    result = LaneExplainer(chat=chat).explain(lane_run, "u3", k=4, loaded=loaded)
    user = int(data.user_index(["u3"])[0])
    history = Ragged.from_lists([list(data.sequences[user])])
    state = model.user_vectors(history, np.array([user]))[0]
    weights = model.state_hook.last_weights[0]
    shown = [entry["weight"] for entry in result.payload["preferences"]]
    assert np.allclose(shown, weights.numpy(), atol=1e-7) and abs(sum(shown) - 1) < 1e-5
    assert [e["phrase"] for e in result.payload["preferences"]] == list(PREFERENCES.values())
    scores = (model.item_table() @ state).detach().numpy()
    for item in result.items:
        assert np.isclose(item.score, scores[int(data.item_index([item.item_id])[0])], atol=1e-5)
    prompt = chat.seen[-1].last_user_message()
    best = int(np.argmax(shown))
    assert f"{list(PREFERENCES.values())[best]} (weight {shown[best]:.3f})" in prompt
    assert result.items[0].title in prompt
    assert result.payload["chain_of_thought"]["text"] == prompt  # the echo model answers with the prompt


def test_the_deletion_check_reports_its_drops(lane_run):
    result = LaneExplainer(chat=MockChatModel(mode="fixed", answer="Step 1: ...", cache={"enabled": False})).explain(
        lane_run, "u3", k=3, check=True)
    assert set(result.check["drops"]) == set(PREFERENCES.values())
    drops = result.check["drops"]
    assert result.check["ok"] == all(drops[result.check["top_preference"]] > v for p, v in drops.items()
                                     if p != result.check["top_preference"])


def test_lucidrec_explain_prints_the_weights(lane_run):
    assert isinstance(explainer_for(lane_run), LaneExplainer)
    runner = CliRunner()
    result = runner.invoke(app, ["explain", "--run", str(lane_run), "--user", "u3", "--k", "3"])
    assert result.exit_code == 0, result.output
    assert "preferences, with the attention weight the score used:" in result.output
    assert "gritty crime dramas" in result.output and fixed_answer() in result.output
    as_json = runner.invoke(app, ["explain", "--run", str(lane_run), "--user", "u3", "--k", "3", "--json"])
    assert len(json.loads(as_json.output)["preferences"]) == 5


def _with_embedding(loaded, **options):
    """``loaded`` with ``options`` set in the run's embedding config (as a run trained with them would have)."""
    model, data, split, run_config = loaded
    return model, data, split, run_config.model_copy(update={"embedding": {**run_config.embedding, **options}})


def test_the_explanation_is_capped_and_says_when_it_was_cut(lane_run):
    chat = MockChatModel(mode="echo", cache={"enabled": False})  # answers with the prompt: far longer than 16 tokens
    loaded = _with_embedding(load_run(lane_run), explanation_max_tokens=16)
    result = LaneExplainer(chat=chat).explain(lane_run, "u3", k=3, loaded=loaded)
    assert chat.seen[-1].sampling.max_tokens == 16  # the cap reached the chat model
    cot = result.payload["chain_of_thought"]
    assert cot["cut_at_cap"] is True and cot["max_tokens"] == 16
    assert len(cot["text"]) < len(cot["prompt"])
    assert "[answer cut at its 16-token limit: raise embedding.explanation_max_tokens for the rest]" in result.text


def test_an_answer_that_ends_before_the_cap_is_not_marked(lane_run):
    chat = MockChatModel(mode="fixed", answer="Step 1: a\nStep 2: b\nStep 3: c\nStep 4: d", cache={"enabled": False})
    result = LaneExplainer(chat=chat).explain(lane_run, "u3", k=3)
    assert chat.seen[-1].sampling.max_tokens == 256  # LaneConfig's default
    assert result.payload["chain_of_thought"]["cut_at_cap"] is False and "answer cut" not in result.text


def test_an_explanation_cap_below_a_useful_answer_is_refused():
    from lucidrec.config import ConfigError, validate_config
    from lucidrec.embeddings.lane.config import LaneConfig

    with pytest.raises(ConfigError, match=r"'explanation_max_tokens': .*16"):
        validate_config(LaneConfig, {"explanation_max_tokens": 4}, "embedding 'lane'")
