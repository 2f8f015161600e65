import multiprocessing as mp
import os
import signal
import subprocess
import sys
import time

import pytest

from lucidrec.lm.cache import CacheEntry, ResponseCache
from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.lm.prompts import PromptRef, load_prompt


def test_same_request_hits_and_changed_keys_miss(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    ref = PromptRef("demo", "1")
    model.complete("hello", template=ref)
    assert model.calls == 1
    again = model.complete("hello", template=ref)
    assert again.cached and again.text == "hello" and model.calls == 1
    model.complete("hello", template=PromptRef("demo", "2"))  # new template version
    model.complete("hello", template=ref, temperature=0.7)  # other sampling
    model.complete("hello", template=ref, max_tokens=17)
    model.complete("hello", template=ref, key="user-1")  # explicit record key
    assert model.calls == 5
    assert model.cache.session_stats()["writes"] == 5


def test_template_version_from_rendered_prompt_is_in_the_key(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    rendered = load_prompt("user_preference").render(history="Heat; Casino")
    model.complete(rendered)
    model.complete(rendered)
    assert model.calls == 1
    entry = next(model.cache.entries())
    assert (entry["template"], entry["template_version"]) == ("user_preference", "1")


def test_other_model_or_backend_misses(tmp_path):
    a = MockChatModel(cache={"dir": tmp_path}, model="mock-a", show_progress=False)
    b = MockChatModel(cache={"dir": tmp_path}, model="mock-b", show_progress=False)
    a.complete("x")
    b.complete("x")
    assert a.calls == b.calls == 1


def test_no_cache_option_and_disabled_cache(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    model.complete("x")
    model.complete("x", no_cache=True)
    assert model.calls == 2
    off = MockChatModel(cache={"dir": tmp_path, "enabled": False}, show_progress=False)
    off.complete("x")
    off.complete("x")
    assert off.calls == 2 and off.cache is None


def test_failed_answers_are_never_cached(tmp_path):
    state = {"fail": True}

    def flaky(request):
        if state["fail"]:
            raise RuntimeError("backend exploded")
        return "fine"

    model = MockChatModel(cache={"dir": tmp_path}, responder=flaky, show_progress=False)
    out = model.complete_many(["p1", "p2"], errors="return")
    assert [r.ok for r in out] == [False, False] and out[0].error_type == "RuntimeError"
    assert model.cache.stats()["entries"] == 0
    with pytest.raises(RuntimeError, match="exploded"):
        model.complete("p1")
    state["fail"] = False
    assert model.complete("p1").text == "fine"
    assert model.cache.stats()["entries"] == 1
    assert model.usage.failures == 3


def test_accept_check_keeps_invalid_answers_out(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    model.complete_many(["not json"], accept=lambda text: text.startswith("{"))
    assert model.cache.stats()["entries"] == 0
    model.complete_many(["{}"], accept=lambda text: text.startswith("{"))
    assert model.cache.stats()["entries"] == 1


def test_usage_accounting_and_cost(tmp_path):
    model = MockChatModel(cache={"dir": tmp_path}, price_per_1k_prompt=1.0, price_per_1k_completion=2.0,
                          show_progress=False)
    model.complete_many(["one two three", "four five", "one two three"])
    batch = model.last_batch
    assert (batch.requests, batch.model_calls, batch.cache_hits) == (3, 2, 0)
    assert batch.prompt_tokens == 5 and batch.completion_tokens == 5
    assert batch.cost == pytest.approx((5 * 1.0 + 5 * 2.0) / 1000)
    model.complete_many(["one two three"])
    data = model.stats()
    assert data["usage"]["requests"] == 4 and data["usage"]["cache_hits"] == 1
    assert data["cache"]["hits"] == 1
    assert "4 requests" in model.usage.summary()


def _writer(path, worker, count):
    cache = ResponseCache(path)
    for i in range(count):
        key = f"{worker}-{i}"
        cache.put_many([CacheEntry(key, "chat", "mock", "m", {"i": i}, {"text": key})])


def test_concurrent_writers_from_several_processes(tmp_path):
    path = tmp_path / "responses.sqlite"
    ResponseCache(path)
    ctx = mp.get_context("spawn")
    workers = [ctx.Process(target=_writer, args=(path, w, 60)) for w in range(4)]
    for w in workers:
        w.start()
    for w in workers:
        w.join(120)
        assert w.exitcode == 0
    cache = ResponseCache(path)
    assert cache.stats()["entries"] == 240
    assert cache.get("3-59") == {"text": "3-59"}
    assert cache.integrity_ok()


KILLED_WRITER = """
import sys
from lucidrec.lm.cache import CacheEntry, ResponseCache
cache = ResponseCache(sys.argv[1])
i = 0
print("ready", flush=True)
while True:
    batch = [CacheEntry(f"k{i}-{j}", "chat", "mock", "m", {"i": i}, {"text": "x" * 2000}) for j in range(50)]
    cache.put_many(batch)
    i += 1
"""


def test_killed_writer_leaves_a_usable_cache(tmp_path):
    path = tmp_path / "responses.sqlite"
    proc = subprocess.Popen([sys.executable, "-c", KILLED_WRITER, str(path)], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    cache = ResponseCache(path)
    assert cache.integrity_ok()
    entries = cache.stats()["entries"]
    assert entries > 0 and entries % 50 == 0  # whole transactions only
    cache.put_many([CacheEntry("after", "chat", "mock", "m", {}, {"text": "ok"})])
    assert cache.get("after") == {"text": "ok"}


def test_clear_by_backend(tmp_path):
    cache = ResponseCache(tmp_path / "r.sqlite")
    cache.put_many([CacheEntry("a", "chat", "mock", "m", {}, {"text": "1"}),
                    CacheEntry("b", "chat", "openai", "m", {}, {"text": "2"})])
    assert cache.clear(backend="mock") == 1
    assert cache.get("a") is None and cache.get("b") == {"text": "2"}


def test_a_cache_file_that_is_not_a_database_is_named(tmp_path):
    from lucidrec.errors import LucidrecError

    (tmp_path / "responses.sqlite").write_bytes(b"this is not sqlite" * 100)
    with pytest.raises(LucidrecError, match="responses.sqlite: not a usable cache database"):
        ResponseCache(tmp_path / "responses.sqlite")


KILLED_MID_BATCH = """
import os, signal, sys, time
from lucidrec.lm.chat.mock import MockChatModel

answered = 0

def responder(request):
    global answered
    if answered == int(sys.argv[2]):
        os.kill(os.getpid(), signal.SIGKILL)  # killed while the batch is still running
    answered += 1
    time.sleep(0.01)
    return request.last_user_message().upper()

chat = MockChatModel(responder=responder, cache={"dir": sys.argv[1]}, show_progress=False)
if sys.argv[3] == "chat":
    chat.complete_many([f"prompt {i}" for i in range(40)])
else:
    original = chat._score
    def scored_then_killed(requests, choices, method, progress):
        out = []
        for request in requests:
            if answered == int(sys.argv[2]):
                os.kill(os.getpid(), signal.SIGKILL)
            out += original([request], choices, method, progress)
            globals()["answered"] += 1
        return out
    chat._score = scored_then_killed
    chat.score_choices([f"prompt {i}" for i in range(40)], ["1", "2", "3"])
"""


@pytest.mark.parametrize("kind", ["chat", "score"])
def test_answers_are_cached_as_they_arrive_so_a_killed_batch_loses_none(tmp_path, kind):
    killed = subprocess.run([sys.executable, "-c", KILLED_MID_BATCH, str(tmp_path), "16", kind])
    assert killed.returncode == -signal.SIGKILL
    assert ResponseCache.in_dir(tmp_path).stats()["entries"] == 16
    chat = MockChatModel(cache={"dir": tmp_path}, show_progress=False)
    prompts = [f"prompt {i}" for i in range(40)]
    if kind == "chat":
        answers = chat.complete_many(prompts)
        assert [a.text for a in answers[:16]] == [p.upper() for p in prompts[:16]]  # the killed run's answers
    else:
        chat.score_choices(prompts, ["1", "2", "3"])
    assert chat.calls == 24 and chat.last_batch.cache_hits == 16
