"""The OpenAI-compatible backend against a fake server on loopback that misbehaves on purpose."""

import collections
import json
import socket
import threading
import time
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from lucidrec.lm.chat.openai_http import OpenAIChatModel, retry_after_seconds
from lucidrec.lm.errors import LLMRequestError, LLMResponseError, MissingAPIKeyError


class FakeHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _reply(self, status, body: bytes, headers=()):
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        for name, value in headers:
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(body)

    def do_POST(self):
        server = self.server
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        content = body["messages"][-1]["content"]
        with server.lock:
            server.requests.append(body)
            server.in_flight += 1
            server.max_in_flight = max(server.max_in_flight, server.in_flight)
            action = server.script.popleft() if server.script else None
        action = action or next((a for a in ("500", "hang", "slow", "malformed", "401") if f"#{a}" in content), "ok")
        try:
            if action == "429":
                self._reply(429, b'{"error": {"message": "rate limited"}}', [("Retry-After", "0.3")])
            elif action == "500":
                self._reply(500, b'{"error": {"message": "internal trouble"}}')
            elif action == "401":
                self._reply(401, b'{"error": {"message": "bad key"}}')
            elif action == "malformed":
                self._reply(200, b'{"id": "x", "choices": [{"mess')
            elif action == "hang":
                time.sleep(3)
                self._reply(200, self._ok(content))
            else:
                if action == "slow":
                    time.sleep(0.3)
                self._reply(200, self._ok(content))
        except (BrokenPipeError, ConnectionResetError):
            pass
        finally:
            with server.lock:
                server.in_flight -= 1

    def _ok(self, content):
        return json.dumps({
            "id": "chatcmpl-1", "object": "chat.completion", "created": 0, "model": "fake-model",
            "choices": [{"index": 0, "message": {"role": "assistant", "content": f"echo: {content}"},
                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 7, "completion_tokens": 3, "total_tokens": 10},
        }).encode()


@pytest.fixture
def fake():
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeHandler)
    server.daemon_threads = True
    server.lock = threading.Lock()
    server.script = collections.deque()
    server.requests, server.in_flight, server.max_in_flight = [], 0, 0
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.url = f"http://127.0.0.1:{server.server_port}/v1"
    yield server
    server.shutdown()
    server.server_close()


def client(fake, tmp_path, **overrides):
    options = dict(base_url=fake.url, model="fake-model", cache={"dir": tmp_path}, backoff_base=0.05,
                   backoff_max=0.5, timeout=5, show_progress=False)
    options.update(overrides)
    return OpenAIChatModel(**options)


def test_429_is_retried_after_retry_after(fake, tmp_path):
    fake.script.extend(["429"])
    model = client(fake, tmp_path)
    started = time.perf_counter()
    response = model.complete("hello")
    assert response.text == "echo: hello" and response.retries == 1
    assert time.perf_counter() - started >= 0.3  # honoured Retry-After rather than the 0.05 s back-off
    assert len(fake.requests) == 2 and model.usage.retries == 1
    assert model.cache.stats()["entries"] == 1


def test_500_fails_clearly_after_retries_and_is_not_cached(fake, tmp_path):
    model = client(fake, tmp_path, max_retries=2)
    with pytest.raises(LLMRequestError) as info:
        model.complete("boom #500")
    assert info.value.status == 500 and info.value.attempts == 3
    assert "HTTP 500" in str(info.value) and "internal trouble" in str(info.value) and "after 3 attempts" in str(info.value)
    assert len(fake.requests) == 3
    assert model.cache.stats()["entries"] == 0


def test_transient_500_recovers(fake, tmp_path):
    fake.script.extend(["500", "500"])
    model = client(fake, tmp_path, max_retries=3)
    assert model.complete("x").text == "echo: x"
    assert len(fake.requests) == 3


def test_malformed_json_recovers_or_fails_clearly(fake, tmp_path):
    fake.script.extend(["malformed"])
    model = client(fake, tmp_path)
    assert model.complete("once").text == "echo: once"
    with pytest.raises(LLMResponseError, match="malformed response"):
        client(fake, tmp_path, max_retries=1).complete("always #malformed")
    assert all("#malformed" not in e["request"]["messages"][0]["content"] for e in model.cache.entries())


def test_hanging_server_times_out(fake, tmp_path):
    model = client(fake, tmp_path, timeout=0.5, max_retries=1)
    with pytest.raises(LLMRequestError, match=r"no answer from .* within 0.5 s \(after 2 attempts\)"):
        model.complete("wait #hang")
    assert model.cache.stats()["entries"] == 0


def test_auth_error_is_not_retried_and_names_the_variable(fake, tmp_path):
    model = client(fake, tmp_path, max_retries=3)
    with pytest.raises(LLMRequestError, match="HTTP 401 \\(check OPENAI_API_KEY\\)"):
        model.complete("#401")
    assert len(fake.requests) == 1


def test_mixed_batch_reports_failures_and_caches_successes(fake, tmp_path):
    model = client(fake, tmp_path, max_retries=1, concurrency=3)
    prompts = ["a", "b #500", "c", "d #malformed"]
    out = model.complete_many(prompts, errors="return")
    assert [r.ok for r in out] == [True, False, True, False]
    assert out[1].error_type == "LLMRequestError" and out[3].error_type == "LLMResponseError"
    assert model.cache.stats()["entries"] == 2
    with pytest.raises(LLMRequestError):
        model.complete_many(prompts)  # raises after finishing the batch
    calls_before = len(fake.requests)
    model.complete_many(["a", "c"])
    assert len(fake.requests) == calls_before  # both cached


def test_concurrency_limit_and_order(fake, tmp_path):
    model = client(fake, tmp_path, concurrency=3)
    prompts = [f"p{i} #slow" for i in range(9)]
    out = model.complete_many(prompts)
    assert [r.text for r in out] == [f"echo: {p}" for p in prompts]
    assert 2 <= fake.max_in_flight <= 3  # ran in parallel, never above the limit


def test_token_and_cost_accounting(fake, tmp_path):
    model = client(fake, tmp_path, price_per_1k_prompt=0.5, price_per_1k_completion=1.5)
    model.complete_many(["a", "b", "c"])
    batch = model.last_batch
    assert (batch.prompt_tokens, batch.completion_tokens, batch.model_calls) == (21, 9, 3)
    assert batch.to_dict()["cost"] == pytest.approx((21 * 0.5 + 9 * 1.5) / 1000)


def test_no_api_key_names_the_variable(monkeypatch, tmp_path):
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.delenv("MY_KEY", raising=False)
    with pytest.raises(MissingAPIKeyError, match="OPENAI_API_KEY"):
        OpenAIChatModel(base_url="https://llm.example.com/v1", model="m", cache={"dir": tmp_path})
    with pytest.raises(MissingAPIKeyError, match="MY_KEY"):
        OpenAIChatModel(base_url="https://llm.example.com/v1", model="m", api_key_env="MY_KEY", cache={"dir": tmp_path})
    monkeypatch.setenv("MY_KEY", "k")
    assert OpenAIChatModel(base_url="https://llm.example.com/v1", model="m", api_key_env="MY_KEY",
                           cache={"dir": tmp_path}).model_id == "m"


def test_settings_from_environment(monkeypatch, tmp_path, fake):
    monkeypatch.setenv("LUCIDREC_LLM_BASE_URL", fake.url)
    monkeypatch.setenv("LUCIDREC_LLM_MODEL", "env-model")
    model = OpenAIChatModel(cache={"dir": tmp_path}, show_progress=False)
    assert model.complete("hi").text == "echo: hi"
    assert fake.requests[-1]["model"] == "env-model"


def test_unreachable_server(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIChatModel(base_url=f"http://127.0.0.1:{port}/v1", model="m", cache={"dir": tmp_path},
                            max_retries=2, backoff_base=0.01, show_progress=False)
    with pytest.raises(LLMRequestError, match=f"cannot reach http://127.0.0.1:{port}/v1.*after 3 attempts"):
        model.complete("hello")
    assert model.cache.stats()["entries"] == 0


def test_retry_after_parsing():
    assert retry_after_seconds({"retry-after": "2"}) == 2.0
    assert retry_after_seconds({"retry-after-ms": "250"}) == 0.25
    assert 8 <= retry_after_seconds({"retry-after": formatdate(time.time() + 10, usegmt=True)}) <= 10
    assert retry_after_seconds({}) is None


def test_requests_per_minute_spaces_out_requests(fake, tmp_path):
    model = client(fake, tmp_path, concurrency=4, requests_per_minute=600)  # one start every 0.1 s
    started = time.perf_counter()
    model.complete_many(["a", "b", "c", "d"])
    assert time.perf_counter() - started >= 0.3


def test_an_endpoint_whose_requests_fail_in_a_row_is_given_up_for_the_rest_of_the_batch(fake, tmp_path):
    # A dead endpoint must not cost every remaining request its full retries and back-off.
    model = client(fake, tmp_path, max_retries=1, concurrency=1, give_up_after=3)
    answers = model.complete_many([f"item {i} #500" for i in range(20)], errors="return")
    assert len(fake.requests) == 3 * 2  # three requests with their retry, then none
    assert all(not a.ok for a in answers)
    assert "3 requests in a row" in answers[-1].error and "HTTP 500" in answers[-1].error
    assert model.last_batch.model_calls == 3 and model.last_batch.failures == 20  # the unsent are no model calls
    fake.script.clear()
    healthy = client(fake, tmp_path, max_retries=1, concurrency=1, give_up_after=3)
    assert healthy.complete_many(["a #500", "b", "c #500", "d #500", "e"], errors="return")[-1].ok  # not in a row


def test_an_endpoint_that_refuses_connections_fails_fast(tmp_path):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    model = OpenAIChatModel(base_url=f"http://127.0.0.1:{port}/v1", model="m", cache={"dir": tmp_path},
                            backoff_base=0.2, show_progress=False)  # default retries and give-up
    started = time.perf_counter()
    answers = model.complete_many([f"p{i}" for i in range(200)], errors="return")
    assert all(not a.ok and "cannot reach" in a.error for a in answers)
    assert time.perf_counter() - started < 30
