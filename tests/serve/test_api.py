"""The recommender API on four run kinds (GER, LANE, id-based SASRec, most-popular baseline) of an ml-100k slice."""

import numpy as np
import pytest
import torch

pytestmark = pytest.mark.slow


def test_health_and_runs_list_every_kind(client):
    health = client.get("/health").json()
    assert (health["status"], health["runs"]) == ("ok", ["ger", "sasrec", "pop", "lane"])
    runs = {r["name"]: r for r in client.get("/runs").json()}
    assert [runs[n]["method"] for n in ("ger", "sasrec", "pop", "lane")] == ["ger", "id", "baseline", "lane"]
    assert runs["pop"]["model"] == "pop" and runs["ger"]["dataset"] == "ml-100k"
    assert [runs[n]["explainable"] for n in ("ger", "sasrec", "pop", "lane")] == [True, False, False, True]
    assert 0 < runs["sasrec"]["metrics"]["test/full/ndcg@10"] < 1


def test_run_detail_groups_metrics(client, run_folders):
    import json

    detail = client.get("/runs/ger").json()
    stored = json.loads((run_folders["ger"] / "metrics.json").read_text())
    assert detail["groups"]["all"]["ndcg@10"] == pytest.approx(stored["test/full/ndcg@10"])
    assert detail["groups"]["tail"]["n_users"] == stored["test/full/tail/n_users"]
    assert {"head", "tail", "short", "long"} <= set(detail["groups"])


def test_user_recommendations_are_the_models_top_k_with_history_masked(client, served_runs):
    run = served_runs["sasrec"]
    body = client.get("/runs/sasrec/users/1/recommendations", params={"k": 7}).json()
    history = run.history(run.user_index("1"))
    assert [i["item_id"] for i in body["history"]] == [run.item_id(i) for i in history[-50:]]
    with torch.no_grad():
        scores = run.model.item_table() @ run.model.user_vectors(run.data.sequences.take(np.array([run.user_index("1")])))[0]
    scores[0] = -torch.inf
    scores[history] = -torch.inf
    expected = torch.topk(scores, 7).indices.tolist()
    assert [i["item_id"] for i in body["items"]] == [run.item_id(i) for i in expected]
    assert [i["rank"] for i in body["items"]] == list(range(1, 8))
    assert [i["title"] for i in body["items"]] == [run.title(i) for i in expected]
    seen = {run.item_id(i) for i in history}
    assert not seen & {i["item_id"] for i in body["items"]}
    unmasked = client.get("/runs/sasrec/users/1/recommendations", params={"k": 7, "mask_history": False}).json()
    assert seen & {i["item_id"] for i in unmasked["items"]}  # this user has seen the most likely items


def test_stored_users_states_are_kept_and_never_used_for_another_history(client, served_runs):
    run = served_runs["lane"]  # per-user preferences: the user and the history both matter
    user = run.user_index("1")
    first = client.get("/runs/lane/users/1/recommendations", params={"k": 5}).json()["items"]
    assert run.state_cache.has(user)
    again = client.get("/runs/lane/users/1/recommendations", params={"k": 5}).json()["items"]
    assert again == first
    with torch.no_grad():
        fresh = run.model.user_vectors(run.data.sequences.take(np.array([user])), np.array([user]))[0]
    assert torch.allclose(run.state_cache.get([user])[0], fresh, atol=1e-5)
    history = [run.item_id(i) for i in run.history(user)[:3]]
    other = client.post("/runs/lane/recommend", json={"item_ids": history, "k": 5, "user_id": "1"}).json()["items"]
    assert [i["score"] for i in other] != pytest.approx([i["score"] for i in first], abs=1e-4)
    explained = client.post("/runs/lane/explain", json={"item_ids": history, "k": 5, "user_id": "1"}).json()["items"]
    assert [i["score"] for i in other] == pytest.approx([i["score"] for i in explained], abs=1e-5)


def test_adhoc_history_by_ids_and_titles(client, served_runs):
    run = served_runs["sasrec"]
    history = run.history(run.user_index("1"))
    ids = [run.item_id(i) for i in history]
    by_user = client.get("/runs/sasrec/users/1/recommendations", params={"k": 5}).json()["items"]
    by_ids = client.post("/runs/sasrec/recommend", json={"item_ids": ids, "k": 5}).json()
    assert by_ids["user_id"] is None
    assert [i["item_id"] for i in by_ids["items"]] == [i["item_id"] for i in by_user]  # an id model has no per-user part
    titles = [run.title(i) for i in history[-3:]]
    by_titles = client.post("/runs/sasrec/recommend", json={"titles": titles, "k": 5}).json()
    same = client.post("/runs/sasrec/recommend", json={"item_ids": ids[-3:], "k": 5}).json()
    assert by_titles["items"] == same["items"]
    assert [i["title"] for i in by_titles["history"]] == titles
    assert len(client.post("/runs/pop/recommend", json={"titles": titles, "k": 5}).json()["items"]) == 5


def test_ger_explanations_match_the_recommendations_and_add_up(client):
    recommended = client.get("/runs/ger/users/1/recommendations", params={"k": 5}).json()["items"]
    body = client.get("/runs/ger/users/1/explanations", params={"k": 5}).json()
    assert body["method"] == "ger-attribute-contributions" and body["user_id"] == "1"
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in recommended]
    for item, rec in zip(body["items"], recommended):
        assert item["score"] == pytest.approx(rec["score"], abs=1e-5)
        assert sum(w["value"] for w in item["contributions"]) + item["rest"] == pytest.approx(item["score"], abs=1e-5)
        assert len(item["contributions"]) == len(body["profile"]) == 8 and item["text"].startswith("score ")
    assert "leans towards" in body["text"]
    adhoc = client.post("/runs/ger/explain", json={"item_ids": ["50", "172"], "k": 3}).json()
    assert adhoc["user_id"] is None and len(adhoc["items"]) == 3 and "no user part of its own" in adhoc["notes"][0]
    as_user = client.post("/runs/ger/explain", json={"item_ids": ["50", "172"], "k": 3, "user_id": "1"}).json()
    assert as_user["user_id"] == "1" and "the user's own" in as_user["notes"][0]


def test_lane_explanations_show_the_attention_weights_the_explainer_reads(client, served_runs, run_folders):
    from lucidrec.explain import explainer_for

    run = served_runs["lane"]
    recommended = client.get("/runs/lane/users/1/recommendations", params={"k": 5}).json()["items"]
    body = client.get("/runs/lane/users/1/explanations", params={"k": 5}).json()
    assert body["method"] == "lane-preference-attention" and body["notes"] == []
    assert [i["item_id"] for i in body["items"]] == [i["item_id"] for i in recommended]
    for item, rec in zip(body["items"], recommended):
        assert item["score"] == pytest.approx(rec["score"], abs=1e-5) and item["contributions"] == []
    shown = {w["name"]: w["value"] for w in body["profile"]}
    from_folder = explainer_for(run_folders["lane"]).explain(run_folders["lane"], "1", k=5, loaded=run.loaded)
    from_folder = from_folder.payload["preferences"]
    assert shown == pytest.approx({p["phrase"]: p["weight"] for p in from_folder}, abs=1e-6)
    assert len(shown) == 5 and sum(shown.values()) == pytest.approx(1, abs=1e-5)
    assert [w["value"] for w in body["profile"]] == sorted(shown.values(), reverse=True)
    assert f"attended most to {body['profile'][0]['name']}." in body["text"]


def test_lane_adhoc_histories_use_a_named_users_preferences_or_say_there_are_none(client, served_runs):
    history = [str(i) for i in served_runs["lane"].data.item_ids[1:4]]
    visitor = client.post("/runs/lane/explain", json={"item_ids": history, "k": 4}).json()
    assert visitor["user_id"] is None and visitor["profile"] == []
    assert "a visitor" in visitor["notes"][0] and "backbone state alone" in visitor["notes"][0]
    plain = client.post("/runs/lane/recommend", json={"item_ids": history, "k": 4}).json()["items"]
    assert [i["item_id"] for i in visitor["items"]] == [i["item_id"] for i in plain]
    as_user = client.post("/runs/lane/explain", json={"item_ids": history, "k": 4, "user_id": "1"}).json()
    recommended = client.post("/runs/lane/recommend", json={"item_ids": history, "k": 4, "user_id": "1"}).json()
    assert as_user["user_id"] == recommended["user_id"] == "1" and len(as_user["profile"]) == 5
    assert [i["score"] for i in as_user["items"]] == pytest.approx([i["score"] for i in recommended["items"]], abs=1e-5)
    assert [i["score"] for i in as_user["items"]] != pytest.approx([i["score"] for i in visitor["items"]], abs=1e-5)
    missing = client.post("/runs/lane/explain", json={"item_ids": history, "user_id": "no-such-user"})
    assert missing.status_code == 404 and "unknown user 'no-such-user'" in missing.json()["detail"]


@pytest.mark.parametrize("run", ["sasrec", "pop"])
def test_runs_without_an_explainer_answer_404(client, run):
    response = client.get(f"/runs/{run}/users/1/explanations")
    assert response.status_code == 404 and f"no explainer for run '{run}'" in response.json()["detail"]
    assert client.post(f"/runs/{run}/explain", json={"item_ids": ["50"]}).status_code == 404


def test_unknown_names_are_404_naming_them(client):
    cases = {"/runs/nope": "unknown run 'nope'", "/runs/nope/users/1/recommendations": "unknown run 'nope'",
             "/runs/ger/users/no-such-user/recommendations": "unknown user 'no-such-user' in run 'ger'",
             "/runs/ger/users/no-such-user/explanations": "unknown user 'no-such-user'",
             "/runs/ger/items/no-such-item": "unknown item 'no-such-item'"}
    for path, message in cases.items():
        response = client.get(path)
        assert response.status_code == 404 and message in response.json()["detail"], path
    response = client.post("/runs/ger/recommend", json={"titles": ["Not A Film (1901)"]})
    assert response.status_code == 404 and "unknown item title 'Not A Film (1901)'" in response.json()["detail"]
    response = client.post("/runs/ger/recommend", json={"item_ids": ["50", "999999"]})
    assert response.status_code == 404 and "'999999'" in response.json()["detail"]


@pytest.mark.parametrize("params", [{"k": 0}, {"k": 51}, {"k": "ten"}, {"k": 10**30}, {"mask_history": "perhaps"}])
def test_bad_query_parameters_are_422(client, params):
    assert client.get("/runs/ger/users/1/recommendations", params=params).status_code == 422


@pytest.mark.parametrize("body", [{}, {"item_ids": []}, {"item_ids": "50"}, {"item_ids": ["50"], "k": 51},
                                  {"item_ids": ["50"], "extra": 1}, {"item_ids": [["50"]]}, [],
                                  {"item_ids": ["50"] * 1001}])
def test_malformed_bodies_are_422(client, body):
    assert client.post("/runs/ger/recommend", json=body).status_code == 422


def test_not_json_is_422(client):
    response = client.post("/runs/ger/recommend", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 422


def test_title_search_matches_titles_then_the_encoder(client):
    body = client.get("/runs/ger/items", params={"query": "star", "limit": 12}).json()
    titles = [i["title"] for i in body["items"]]
    title_hits = [i for i in body["items"] if i["match"] == "title"]
    assert title_hits and all("star" in i["title"].lower() for i in title_hits)
    assert body["items"][: len(title_hits)] == title_hits  # title matches first
    assert len(titles) == 12 and body["encoder"].startswith("all-MiniLM-L6-v2")
    semantic = client.get("/runs/ger/items", params={"query": "space adventure with jedi knights", "limit": 5}).json()
    assert all(i["match"] == "encoder" for i in semantic["items"])
    assert any("Star Wars" in i["title"] or "Jedi" in i["title"] or "Empire" in i["title"] for i in semantic["items"])
    assert client.get("/runs/ger/items", params={"query": ""}).status_code == 422


def test_item_detail(client, served_runs):
    body = client.get("/runs/ger/items/50").json()
    assert body["title"] == "Star Wars (1977)" and "Sci-Fi" in body["fields"]["genres"]
    run = served_runs["ger"]
    assert body["interactions"] == int((run.data.sequences.values == run.item_index("50")).sum()) > 100


def test_user_pages_and_history(client, served_runs):
    run = served_runs["ger"]
    page = client.get("/runs/ger/users", params={"offset": 5, "limit": 3}).json()
    assert page["total"] == run.data.n_users and [u["user_id"] for u in page["users"]] == list(run.data.user_ids[5:8])
    user = page["users"][0]
    history = client.get(f"/runs/ger/users/{user['user_id']}").json()["history"]
    assert len(history) == user["history_length"]


def test_concurrent_requests_are_scored_in_batches(client, rec_app, served_runs):
    from concurrent.futures import ThreadPoolExecutor

    run = served_runs["sasrec"]
    batcher = rec_app.state.batchers["sasrec"]
    calls = []

    def counting(requests):
        calls.append(len(requests))
        return run.score_batch(requests)

    batcher.process, batcher.wait = counting, 0.02  # gather for 20 ms, so batching shows on any machine
    try:
        users = list(run.data.user_ids[:40])
        with ThreadPoolExecutor(20) as pool:
            answers = list(pool.map(lambda u: client.get(f"/runs/sasrec/users/{u}/recommendations?k=3"), users))
    finally:
        batcher.process, batcher.wait = run.score_batch, 0.0
    assert all(a.status_code == 200 for a in answers)
    assert sum(calls) == 40 and max(calls) > 1


def test_health_lists_runs_still_computing_their_users_states(served_runs, monkeypatch):
    import threading
    import time

    from fastapi.testclient import TestClient

    from lucidrec.serve.app import create_app

    run = served_runs["sasrec"]
    release = threading.Event()
    monkeypatch.setattr(run, "warm_states", lambda: release.wait(30))
    with TestClient(create_app({"sasrec": run, "pop": served_runs["pop"]})) as client:
        assert client.get("/health").json()["warming"] == ["sasrec"]  # baselines have no states to compute
        assert client.get("/runs/sasrec/users/1/recommendations").status_code == 200  # answered meanwhile
        release.set()
        deadline = time.monotonic() + 30
        while client.get("/health").json()["warming"] and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.get("/health").json()["warming"] == []
