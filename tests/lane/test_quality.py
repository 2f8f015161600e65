"""LANE's explanation quality: fidelity parsing of hand-made answers, the LLM-only answers' preferences, the
grounding threshold's calibration, and the whole measurement on a tiny run with the mock chat model."""

from __future__ import annotations

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.data.sequences import Ragged
from lucidrec.explain.lane_deletion import deletion_summary
from lucidrec.explain.lane_quality import (calibrate_threshold, closest_title_similarity, grounding, lane_quality,
                                           ranked_first)
from lucidrec.explain.llm_only import named_preferences
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.train.run import load_run

from lane_helpers import PREFERENCES  # noqa: E402  (tests/lane/conftest.py)

PHRASES = ["gritty crime dramas", "light romantic comedies", "interest in Drama", "interest in star wars"]


def test_step3_names_the_preference_ranked_first():
    answer = """Step 1: the user likes light romantic comedies and gritty crime dramas.
Step 2: gritty crime dramas: 0.2, light romantic comedies: 0.9
Step 3: High. The Drama side weighs most here, then the light romantic comedies.
Step 4: Enjoy!"""
    assert ranked_first(answer, PHRASES).index == 2  # "interest in Drama" named by its content word
    assert ranked_first(answer, PHRASES).how == "step3-first-named"


def test_step2_highest_fit_when_step3_names_none():
    answer = """Step 1: ...
Step 2:
- gritty crime dramas - fit 0.3 because it is dark
- light romantic comedies: 0.85
- Star Wars fans: 1 (it is a sequel)
Step 3: Medium, as explained.
Step 4: ..."""
    picked = ranked_first(answer, PHRASES)
    assert (picked.index, picked.how) == (3, "step2-highest-fit")
    no_numbers = "Step 2: light romantic comedies fit, and gritty crime dramas too.\nStep 3: Low."
    assert ranked_first(no_numbers, PHRASES).index == 1


def test_an_answer_that_names_no_preference_is_unparseable():
    for answer in ["Step 1: hello\nStep 2: great movie\nStep 3: High\nStep 4: watch it", "", "I like it."]:
        assert ranked_first(answer, PHRASES).index is None
    # Without step markers the whole answer is read; a partial phrase ('crime' alone) names nothing.
    assert ranked_first("A crime story for you.", PHRASES).index is None
    assert ranked_first("Perfect for gritty crime dramas.", PHRASES).index == 0


def test_llm_only_named_preferences_are_read_in_order():
    answer = """Step 1:
1. Classic science fiction
2) Space adventures
- classic science fiction
3. ...
Step 2: You will love it.
1. not a preference (step 2)"""
    assert named_preferences(answer) == ["Classic science fiction", "Space adventures"]
    assert named_preferences("no list here") == []
    # Without a "Step 1" marker the list before the next step counts; later steps' lists do not.
    assert named_preferences("1. Comedy\n2. Crime\n\nStep 3:\n1. Comedy\n2. Cri", limit=5) == ["Comedy", "Crime"]
    assert named_preferences("1. a\n2. b\n3. c", limit=2) == ["a", "b"]


def _unit(rows):
    rows = np.asarray(rows, float)
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def test_grounding_threshold_is_the_quantile_of_matches_against_other_users_histories():
    rng = np.random.default_rng(0)
    # Each user's history is near one axis; their phrases are near the same axis (grounded) or not.
    histories = {u: _unit(np.eye(8)[u] + 0.1 * rng.standard_normal((6, 8))) for u in range(8)}
    phrases = [_unit(np.eye(8)[u] + 0.1 * rng.standard_normal((3, 8))) for u in range(8)]
    threshold = calibrate_threshold(phrases, list(range(8)), histories, np.random.default_rng(1), quantile=0.95)
    # By hand: the same draws of another user per owner.
    draw, null = np.random.default_rng(1), []
    for owner in range(8):
        choices = [u for u in histories if u != owner]
        null.append(closest_title_similarity(phrases[owner], histories[choices[int(draw.integers(len(choices)))]]))
    assert threshold == pytest.approx(np.quantile(np.concatenate(null), 0.95))
    own = grounding(phrases, [histories[u] for u in range(8)], threshold)
    shuffled = grounding(phrases, [histories[(u + 1) % 8] for u in range(8)], threshold)
    assert own["rate"] == 1.0 and own["phrases"] == 24
    assert shuffled["rate"] < 0.5
    with pytest.raises(ValueError, match="another user"):
        calibrate_threshold(phrases[:1], [0], {0: histories[0]}, np.random.default_rng(0))


def test_a_phrase_without_history_is_never_grounded():
    assert closest_title_similarity(_unit([[1.0, 0.0]]), np.zeros((0, 2)))[0] == -1.0


def _responder(pick):
    """A chat model that answers the CoT prompt by naming the preference ``pick`` chooses from the listed weights,
    and the LLM-only prompt with a numbered list."""
    def answer(request):
        prompt = request.last_user_message()
        if "weight the recommender gave it" in prompt:
            listed = [line[2:line.rindex(" (weight")] for line in prompt.splitlines()
                      if line.startswith("- ") and "(weight " in line]
            return f"Step 1: ...\nStep 2: ...\nStep 3: High, because of {pick(listed)}.\nStep 4: ..."
        return "Step 1:\n1. gritty crime dramas\n2. documentaries about music\nStep 2: Watch it."
    return answer


@pytest.mark.parametrize("pick, expected", [(lambda listed: listed[0], 1.0), (lambda listed: listed[-1], 0.0)])
def test_fidelity_counts_answers_that_rank_the_highest_weight_first(lane_run, hash_encoder, pick, expected):
    chat = MockChatModel(responder=_responder(pick), cache={"enabled": False})
    result = lane_quality(lane_run, users=6, generate=4, seed=3, chat=chat, encoder=hash_encoder)
    fidelity = result["lane"]["fidelity"]
    assert fidelity["answers"] == 4 and fidelity["parsed"] == 4 and fidelity["unparseable"] == 0
    assert fidelity["rate"] == expected  # the listed order is by weight, highest first
    assert fidelity["chance_rate"] == pytest.approx(1 / len(PREFERENCES))
    only = result["llm_only"]
    assert only["fidelity"]["parsed"] == 4 and only["preferences_named"] == 8
    assert 0 <= only["grounding"]["rate"] <= 1
    assert result["answers_cut_at_cap"] == {"max_tokens": 256, "lane": 0, "llm_only": 0}
    assert {request.sampling.max_tokens for request in chat.seen} == {256}


def test_quality_counts_the_answers_cut_at_the_explanation_cap(lane_run, hash_encoder):
    chat = MockChatModel(mode="echo", cache={"enabled": False})  # answers with the prompt: longer than 16 tokens
    model, data, split, run_config = load_run(lane_run)
    capped = run_config.model_copy(update={"embedding": {**run_config.embedding, "explanation_max_tokens": 16}})
    result = lane_quality(lane_run, users=4, generate=2, seed=3, chat=chat, encoder=hash_encoder,
                          loaded=(model, data, split, capped))
    assert result["answers_cut_at_cap"] == {"max_tokens": 16, "lane": 2, "llm_only": 2}
    assert {request.sampling.max_tokens for request in chat.seen} == {16}
    assert all(row["answers_cut_at_cap"] == ["lane", "llm_only"] for row in result["per_user"][:2])


def test_quality_deletion_and_grounding_use_the_sample(lane_run, hash_encoder):
    result = lane_quality(lane_run, users=5, generate=0, seed=1, encoder=hash_encoder)
    assert result["users"] == 5 and "fidelity" not in result["lane"]
    # The deletion figures are those of deletion_summary on the same users and their top items.
    model, data, _, _ = load_run(lane_run)
    users = data.user_index([r["user_id"] for r in result["per_user"]])
    items = data.item_index([r["item_id"] for r in result["per_user"]])
    histories = Ragged.from_lists([list(data.sequences[int(u)]) for u in users])
    assert deletion_summary(model, histories, users, items, seed=1) == result["lane"]["deletion"]
    grounded = result["lane"]["grounding"]
    assert grounded["phrases"] == 5 * len(PREFERENCES) and grounded["threshold"] > -1
    assert result["lane"]["deletion"]["pairs"] + result["lane"]["deletion"]["skipped_fewer_than_two_preferences"] == 5


def test_the_cli_writes_the_metrics_and_refuses_other_runs(lane_run, tmp_path, monkeypatch, hash_encoder):
    import lucidrec.lm.encoder

    monkeypatch.setattr(lucidrec.lm.encoder, "TextEncoder", lambda *args, **kwargs: hash_encoder)
    out = tmp_path / "quality.json"
    result = CliRunner().invoke(app, ["explain-quality", "--run", str(lane_run), "--users", "4", "--generate", "2",
                                      "--json", str(out)])
    assert result.exit_code == 0, result.output
    stored = json.loads(out.read_text())
    assert stored["users"] == 4 and stored["generated_users"] == 2 and stored["lane"]["fidelity"]["answers"] == 2
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "config.json").write_text(json.dumps({"embedding": {"name": "id"}}))
    refused = CliRunner().invoke(app, ["explain-quality", "--run", str(tmp_path / "other")])
    assert refused.exit_code != 0 and "LANE runs" in refused.output
