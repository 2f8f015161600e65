"""RecInterpreter on a served run: attaching its folder, the reading in /explanations, its cache and bound."""

import dataclasses
import threading
import time
from pathlib import Path

import pytest

from lucidrec.config import ConfigError

pytestmark = pytest.mark.slow
K = 5


def count_generations(monkeypatch, run) -> list[int]:
    """Every LM generation of ``run``'s interpreter, as the number of rows it generated."""
    interpreter = run.interpreter.reader.interpreter
    calls: list[int] = []
    original = interpreter.generate

    def counting(template, states, max_new_tokens):
        calls.append(len(states))
        return original(template, states, max_new_tokens)

    monkeypatch.setattr(interpreter, "generate", counting)
    return calls


def test_runs_name_their_interpreter_and_the_schema_has_the_reading(read_client, interpreter_folder):
    runs = {r["name"]: r for r in read_client.get("/runs").json()}
    assert runs["sasrec"]["interpreter"] == {"task": "residual", "lm": "tiny-llama-0", "folder": interpreter_folder.name}
    assert runs["sasrec"]["explainable"] is True  # an id run has no explainer of its scores, but it can be read
    assert runs["ger"]["interpreter"] is None and runs["pop"]["interpreter"] is None and not runs["pop"]["explainable"]
    schema = read_client.get("/openapi.json").json()
    reading = schema["components"]["schemas"]["StateReading"]
    assert {"current_state", "predicted_next_item", "last_item", "recommender_top", "heldout"} <= set(reading["required"])
    explanation = schema["components"]["schemas"]["Explanation"]["properties"]["reading"]
    assert {"$ref": "#/components/schemas/StateReading"} in explanation["anyOf"]
    for path, method in (("/runs/{run}/users/{user}/explanations", "get"), ("/runs/{run}/explain", "post")):
        parameters = {p["name"]: p for p in schema["paths"][path][method]["parameters"]}
        assert parameters["reading"]["in"] == "query" and parameters["reading"]["schema"]["default"] is False


def test_a_users_reading_is_what_the_interpreter_says_about_their_state(read_client, read_runs, monkeypatch):
    run = read_runs["sasrec"]
    calls = count_generations(monkeypatch, run)
    plain = read_client.get("/runs/sasrec/users/1/explanations", params={"k": K})
    assert plain.status_code == 200 and plain.json()["reading"] is None and calls == []  # no LM unless asked
    body = read_client.get("/runs/sasrec/users/1/explanations", params={"k": K, "reading": True}).json()
    assert calls == [2]  # the current state and the predicted one, in one batched generation
    recommended = read_client.get("/runs/sasrec/users/1/recommendations", params={"k": K}).json()["items"]
    assert body["method"] == "recinterpreter-state-reading" and body["user_id"] == "1"
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in recommended]
    index = run.user_index("1")
    history = run.history(index)
    expected = run.interpreter.reader.read(history, index)
    reading = body["reading"]
    assert (reading["current_state"], reading["predicted_next_item"]) == (expected.current_state,
                                                                          expected.predicted_next_item)
    assert reading["task"] == "residual" and reading["lm"] == "tiny-llama-0" and "<SeqHere>" in reading["prompt"]
    assert reading["last_item"] == {"item_id": run.item_id(history[-1]), "title": run.title(history[-1])}
    assert [i["item_id"] for i in reading["recent_items"]] == [run.item_id(i) for i in history[-10:]]
    # the recommender's own top items, as the scores rank them (history left out)
    assert [i["item_id"] for i in reading["recommender_top"][:K]] == [i["item_id"] for i in recommended]
    assert reading["heldout"] == ("1" in run.interpreter.reader.heldout_users)


def test_the_same_request_twice_runs_the_language_model_once(read_client, read_runs, monkeypatch):
    run = read_runs["sasrec"]
    calls = count_generations(monkeypatch, run)
    first = read_client.get("/runs/sasrec/users/2/explanations", params={"reading": True}).json()["reading"]
    again = read_client.get("/runs/sasrec/users/2/explanations", params={"reading": True, "k": 3}).json()["reading"]
    assert again == first and len(calls) == 1
    history = [run.item_id(i) for i in run.history(run.user_index("2"))]
    visitor = read_client.post("/runs/sasrec/explain", params={"reading": True}, json={"item_ids": history})
    assert visitor.json()["reading"]["heldout"] is None and len(calls) == 2  # a visitor's question is another one
    read_client.post("/runs/sasrec/explain", params={"reading": True}, json={"item_ids": history})
    assert len(calls) == 2


def test_the_cache_keeps_only_the_most_recent_readings():
    from lucidrec.serve.readings import LRUCache

    cache = LRUCache(2)
    cache.put("a", 1)
    cache.put("b", 2)
    assert cache.get("a") == 1  # "a" is now the most recent
    cache.put("c", 3)
    assert (cache.get("a"), cache.get("b"), cache.get("c"), len(cache)) == (1, None, 3, 2)


def test_readings_in_flight_are_bounded_and_scoring_goes_on(read_runs, monkeypatch):
    from fastapi.testclient import TestClient

    from lucidrec.serve.app import create_app
    from lucidrec.serve.config import ServeConfig

    run = read_runs["sasrec"]
    release, started = threading.Event(), threading.Event()
    answer = run.interpreter.reader.answer

    def slow_answer(prepared, max_new_tokens=None):
        started.set()
        assert release.wait(30)
        return answer(prepared, max_new_tokens)

    monkeypatch.setattr(run.interpreter.reader, "answer", slow_answer)
    with TestClient(create_app({"sasrec": run}, ServeConfig(max_readings=1))) as client:
        results = {}
        worker = threading.Thread(target=lambda: results.setdefault("first", client.get(
            "/runs/sasrec/users/3/explanations", params={"reading": True})))
        worker.start()
        try:
            assert started.wait(30)
            busy = client.get("/runs/sasrec/users/4/explanations", params={"reading": True})
            assert busy.status_code == 503 and "1 state readings in flight" in busy.json()["detail"]
            assert int(busy.headers["Retry-After"]) >= 1
            began = time.monotonic()
            assert client.get("/runs/sasrec/users/4/recommendations").status_code == 200  # the LM holds no scoring lock
            assert client.get("/runs/sasrec/users/4/explanations").status_code == 200
            assert time.monotonic() - began < 20
        finally:
            release.set()
            worker.join(30)
        assert results["first"].status_code == 200 and results["first"].json()["reading"]["current_state"] is not None


def test_unknown_users_and_runs_without_an_interpreter(read_client, client):
    response = read_client.get("/runs/sasrec/users/no-such-user/explanations", params={"reading": True})
    assert response.status_code == 404 and "unknown user 'no-such-user' in run 'sasrec'" in response.json()["detail"]
    response = read_client.get("/runs/ger/users/1/explanations", params={"reading": True})
    assert response.status_code == 404 and "no interpreter for run 'ger'" in response.json()["detail"]
    assert "--interpreter" in response.json()["detail"]
    ger = read_client.get("/runs/ger/users/1/explanations", params={"k": K}).json()  # today's GER explanation
    assert ger["method"] == "ger-attribute-contributions" and ger["reading"] is None
    response = read_client.get("/runs/pop/users/1/explanations", params={"reading": True})
    assert response.status_code == 404 and "no interpreter for run 'pop'" in response.json()["detail"]
    served_without = client.get("/runs/sasrec/users/1/explanations")  # the same run served without one
    assert served_without.status_code == 404 and "no explainer for run 'sasrec'" in served_without.json()["detail"]


def test_a_history_too_short_to_read_is_422(read_client, read_runs):
    run = read_runs["sasrec"]
    response = read_client.post("/runs/sasrec/explain", params={"reading": True}, json={"item_ids": [run.item_id(1)]})
    assert response.status_code == 422 and "at least 2" in response.json()["detail"][0]["msg"]
    assert read_client.post("/runs/sasrec/explain", json={"item_ids": [run.item_id(1)]}).status_code == 200


def test_an_interpreter_of_another_run_is_refused_naming_both(served_runs, run_folders, interpreter_folder):
    from lucidrec.serve.readings import attach_interpreter, attach_interpreters

    ger = dataclasses.replace(served_runs["ger"])
    with pytest.raises(ConfigError) as error:
        attach_interpreter(ger, interpreter_folder)
    message = str(error.value)
    assert str(interpreter_folder) in message and f"not on {run_folders['ger'].resolve()}" in message
    assert f"trained on the run {Path(run_folders['sasrec']).resolve()}" in message
    runs = {name: dataclasses.replace(served_runs[name]) for name in ("ger", "lane")}
    with pytest.raises(ConfigError, match="none of the trained runs served: ger .*lane"):
        attach_interpreters(runs, [str(interpreter_folder)])
    with pytest.raises(ConfigError, match="no served run is named 'sasrec'"):
        attach_interpreters(runs, [f"sasrec={interpreter_folder}"])
    with pytest.raises(ConfigError, match="'pop' is a baseline"):
        attach_interpreter(dataclasses.replace(served_runs["pop"]), interpreter_folder)
    assert ger.interpreter is None and all(run.interpreter is None for run in runs.values())


def test_serve_refuses_an_interpreter_of_another_run_at_start(run_folders, interpreter_folder):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    result = CliRunner().invoke(app, ["serve", f"ger={run_folders['ger']}", "--interpreter", str(interpreter_folder)])
    assert result.exit_code == 2
    output = " ".join(result.output.split())
    assert "holds an adapter trained on the run" in output and str(run_folders["ger"].resolve()) in output
