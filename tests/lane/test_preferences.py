"""LANE preference extraction: training part only, validation and re-asks, fallback, resume, recorded files."""

from __future__ import annotations

import json

import numpy as np
import pytest

from lucidrec.data.pipeline import load_split
from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.errors import DataFormatError
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.lm.failures import LLMStageError
from lucidrec.methods.lane.extraction import (FALLBACK, HISTORY, LLM, NONE, RECORDED, Extraction, encode_preferences,
                                              extract_from_history,
                                              extract_with_chat, history_titles, item_titles,
                                              read_recorded)
from lucidrec.methods.lane.phrases import fallback_phrases, split_recorded
from lucidrec.train.run import build_config

from lane_helpers import PREFERENCES, fixed_answer  # noqa: E402  (tests/lane/conftest.py)


def _data(titled_films):
    config = build_config({"data": {"dataset": "titled-films", "data_dir": str(titled_films)},
                           "model": {"name": "sasrec"}})
    return load_split(config.data)


def _chat(tmp_path, responder=None, **kwargs):
    return MockChatModel(responder=responder or (lambda request: fixed_answer()), cache={"dir": str(tmp_path / "cache")},
                         **kwargs)


def _history_lines(request) -> list[str]:
    return [line[2:] for line in request.last_user_message().splitlines() if line.startswith("- ")]


def test_no_validation_or_test_title_reaches_a_preference_prompt(tmp_path, titled_films):
    data, split = _data(titled_films)
    titles = item_titles(data)
    chat = _chat(tmp_path)
    extraction = extract_with_chat(LaneConfig(), data, split.train, chat)
    by_history = {}
    for request in chat.seen:
        by_history[tuple(_history_lines(request))] = request
    held_out = {int(u): {int(split.valid.targets[k]), int(split.test.targets[k])}
                for k, u in enumerate(split.test.users)}
    assert set(held_out) and extraction.counts()[LLM] == data.n_users
    for user in range(data.n_users):
        train_titles = history_titles(split.train, user, titles, 200)
        assert tuple(train_titles) in by_history, f"user {user}: the prompt is not the training history, in order"
        shown = set(_history_lines(by_history[tuple(train_titles)]))
        for item in held_out.get(user, ()):
            if item not in split.train[user]:  # (an item seen in training too may be shown)
                assert history_titles(Ragged.from_lists([[item]]), 0, titles, 1)[0] not in shown


def test_answers_with_3_or_9_entries_or_a_repeat_are_reasked(tmp_path, titled_films):
    data, split = _data(titled_films)
    bad = [json.dumps({f"Preference{k}": f"p{k}" for k in range(1, 4)}),
           json.dumps({f"Preference{k}": f"p{k}" for k in range(1, 10)}),
           json.dumps({f"Preference{k}": "same thing" for k in range(1, 6)}),
           "not json at all"]
    attempts: dict[str, int] = {}

    def responder(request):
        first = request.messages[1]["content"]
        attempts[first] = attempts.get(first, 0) + 1
        return bad[attempts[first] - 1] if attempts[first] <= len(bad) else fixed_answer()

    extraction = extract_with_chat(LaneConfig(max_reasks=5), data, split.train, _chat(tmp_path, responder))
    assert extraction.counts()[LLM] == data.n_users and extraction.stats["reasks"] == 4 * len(attempts)
    assert extraction.phrases[0] == list(PREFERENCES.values())


def test_users_still_invalid_get_the_counted_fallback_and_are_kept(tmp_path, titled_films):
    data, split = _data(titled_films)
    chat = _chat(tmp_path, lambda request: '{"Preference1": "only one"}')
    extraction = extract_with_chat(LaneConfig(max_reasks=2), data, split.train, chat)
    assert extraction.counts() == {LLM: 0, RECORDED: 0, HISTORY: 0, FALLBACK: data.n_users, NONE: 0}
    assert extraction.stats["invalid_after_reasks"] == data.n_users and extraction.stats["no_answer"] == 0
    assert chat.calls == 3 * data.n_users
    titles = item_titles(data)
    assert extraction.phrases[0] == fallback_phrases([titles[i] for i in split.train[0]], 5)
    assert all(len(p) > 0 for p in extraction.phrases)


def test_fallback_is_the_most_frequent_genres_then_words():
    assert fallback_phrases(["Star Wars", "Star Trek", "The Trek of Wars", "Star Dust"], 2) == [
        "interest in star", "interest in wars"]
    assert fallback_phrases(["Alien (1979)", "Alien Nation"], 3, genres=["Sci-Fi, Horror", "Sci-Fi"]) == [
        "interest in Sci-Fi", "interest in Horror", "interest in alien"]


def test_an_empty_training_history_gets_no_preferences_and_no_prompt(tmp_path, titled_films, hash_encoder):
    data, _ = _data(titled_films)
    train = Ragged.from_lists([[1, 2, 3]] + [[] for _ in range(data.n_users - 1)])
    chat = _chat(tmp_path)
    extraction = extract_with_chat(LaneConfig(), data, train, chat)
    assert chat.calls == 1 and extraction.sources[1:] == [NONE] * (data.n_users - 1)
    vectors, mask = encode_preferences(extraction, hash_encoder, 5)
    assert mask[0].all() and not mask[1:].any() and not vectors[1:].any()
    assert np.allclose(vectors[0], hash_encoder.encode(list(PREFERENCES.values())))


def test_a_killed_extraction_resumes_with_only_the_missing_users(tmp_path, titled_films):
    data, split = _data(titled_films)
    config = LaneConfig(users_per_call=4)
    calls = {"n": 0}

    def dies_after_six(request):
        calls["n"] += 1
        if calls["n"] > 6:
            raise KeyboardInterrupt  # the process is killed mid-way
        return fixed_answer()

    with pytest.raises(KeyboardInterrupt):
        extract_with_chat(config, data, split.train, _chat(tmp_path, dies_after_six))
    chat = _chat(tmp_path)
    extraction = extract_with_chat(config, data, split.train, chat)
    assert chat.calls == data.n_users - 6
    assert extraction.counts()[LLM] == data.n_users


def test_an_endpoint_that_does_not_answer_stops_the_stage(tmp_path, titled_films):
    data, split = _data(titled_films)

    def down(request):
        raise TimeoutError("read timed out")

    with pytest.raises(LLMStageError, match="LANE preference extraction: 12 of 12 users"):
        extract_with_chat(LaneConfig(), data, split.train, _chat(tmp_path, down))
    allowed = extract_with_chat(LaneConfig(llm_max_failed=1.0), data, split.train, _chat(tmp_path / "b", down))
    assert allowed.counts()[FALLBACK] == data.n_users and allowed.stats["no_answer"] == data.n_users


def test_recorded_texts_are_split_into_phrases():
    text = ("User prefers effective skincare and makeup products, favoring quality over price, with a positive "
            "view on BB creams and mascaras.")
    assert split_recorded(text, 5) == ["effective skincare and makeup products", "favoring quality over price",
                                       "with a positive view on BB creams and mascaras"]
    assert split_recorded("The user prefers cosmetics, fragrances, hair care, and nail products with good reviews.",
                          5) == ["cosmetics, fragrances, hair care", "and nail products with good reviews"]
    assert len(split_recorded("a b c; d e f; g h i; j k l; m n o; p q r", 5)) == 5


def test_recorded_file_errors_name_the_line_and_unknown_users_are_named(tmp_path, titled_films):
    data, _ = _data(titled_films)
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"user_id": "u0", "preference": "User prefers long quiet films, very old black films; films about the sea."}\n'
                    '{"user_id": "ghost", "preference": "User prefers nothing at all here."}\n')
    extraction = read_recorded(path, data, 5)
    assert isinstance(extraction, Extraction) and extraction.stats["possible_test_leakage"] is True
    assert extraction.stats["unknown_user_lines"] == [{"line": 2, "user_id": "ghost"}]
    u0 = int(data.user_index(["u0"])[0])
    assert extraction.phrases[u0] == ["long quiet films", "very old black films", "films about the sea"]
    assert extraction.counts()[RECORDED] == 1 and extraction.counts()[NONE] == data.n_users - 1
    for body, where in (('{"user_id": "u0", "preference": "x y z"}\n{oops\n', "line 2"),
                        ('{"user_id": "u1"}\n', "line 1"),
                        ('{"user_id": "u1", "preference": ["a"]}\n', "line 1, field 'preference': the preference is a list"),
                        ('{"user_id": "u1", "preference": "a b c"}\n{"user_id": "u1", "preference": "d e f"}\n',
                         "line 2")):
        path.write_text(body)
        with pytest.raises(DataFormatError, match=where):
            read_recorded(path, data, 5)


def test_an_empty_recorded_text_leaves_its_user_without_preferences_counted(tmp_path, titled_films):
    data, _ = _data(titled_films)
    path = tmp_path / "prefs.jsonl"
    path.write_text('{"user_id": "u0", "preference": "long quiet films"}\n{"user_id": "u1", "preference": ""}\n'
                    '{"user_id": "u2", "preference": null}\n')
    extraction = read_recorded(path, data, 5)
    u1, u2 = (int(i) for i in data.user_index(["u1", "u2"]))
    assert extraction.phrases[u1] == [] and extraction.phrases[u2] == []
    assert extraction.stats["users_with_empty_text"] == 2 and extraction.stats["empty_text_lines"] == [2, 3]
    assert extraction.counts()[RECORDED] == 1


def test_history_source_gives_every_user_the_rule_without_a_model(titled_films):
    data, split = _data(titled_films)
    extraction = extract_from_history(LaneConfig(source="history"), data, split.train)
    assert extraction.counts()[HISTORY] == data.n_users
    titles = item_titles(data)
    for user in range(data.n_users):
        assert extraction.phrases[user] == fallback_phrases([titles[i] for i in split.train[user]], 5)


def test_an_empty_answer_is_an_invalid_answer_not_a_missing_one(tmp_path, titled_films):
    data, split = _data(titled_films)
    extraction = extract_with_chat(LaneConfig(max_reasks=1), data, split.train, _chat(tmp_path, lambda request: ""))
    assert extraction.counts()[FALLBACK] == data.n_users and extraction.stats["no_answer"] == 0
