"""Security defaults of both HTTP apps, probed as an attacker would: over real sockets on loopback.

The chat-completions app runs here over the mock chat model (no weights), so these tests are cheap;
both apps share the same middleware, key check and in-flight bound (``lucidrec.serve.security``)."""

import asyncio
import logging
import socket
import threading
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from lucidrec.lm.chat.mock import MockChatModel
from lucidrec.serve.config import ServeConfig
from lucidrec.serve.lm_app import ChatCompletionServer

KEY = "s3cret-key-for-tests-0123456789"
CHAT = {"messages": [{"role": "user", "content": "hello there"}], "max_tokens": 4}


def lm_server(config=None, **options):
    model = MockChatModel(cache={"enabled": False}, show_progress=False, **options.pop("model_options", {}))
    return ChatCompletionServer(model, config=config or ServeConfig(), batch_wait=0.001, **options).start()


@pytest.fixture
def server():
    with lm_server(ServeConfig(max_body_bytes=64 * 1024)) as server:
        yield server


def raw_request(server, head: bytes, body: bytes = b"", read_timeout: float = 10.0) -> bytes:
    """Send bytes as they are (no client library fixing the headers) and return the raw answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=read_timeout) as sock:
        sock.sendall(head + body)
        chunks = []
        try:
            while True:
                chunk = sock.recv(65536)
                if not chunk:
                    break
                chunks.append(chunk)
                if b"\r\n\r\n" in b"".join(chunks) and _complete(b"".join(chunks)):
                    break
        except (ConnectionResetError, socket.timeout):
            pass
        return b"".join(chunks)


def _complete(answer: bytes) -> bool:
    head, _, body = answer.partition(b"\r\n\r\n")
    for line in head.split(b"\r\n"):
        if line.lower().startswith(b"content-length:"):
            return len(body) >= int(line.split(b":")[1])
    return True


def status_of(answer: bytes) -> int:
    return int(answer.split(b" ", 2)[1])


def post_head(length: bytes, extra: bytes = b"") -> bytes:
    return (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: " + length + b"\r\n" + extra + b"\r\n")


def alive(server) -> bool:
    return httpx.post(server.url + "/chat/completions", json=CHAT, timeout=10).status_code == 200


def test_a_declared_body_over_the_limit_is_refused_before_it_is_read(server):
    answer = raw_request(server, post_head(b"209715200"), b"{")  # 200 MB announced, 1 byte sent
    assert status_of(answer) == 413 and b"over 65536 bytes" in answer
    assert alive(server)


@pytest.mark.parametrize("length", [b"-1", b"abc", b"1e9", b"12, 13"])
def test_a_malformed_content_length_is_400_and_the_server_lives_on(server, length):
    answer = raw_request(server, post_head(length), b'{"messages": []}' + b"x" * 200_000)
    assert answer and status_of(answer) == 400
    assert alive(server)


def test_a_chunked_body_is_cut_off_at_the_limit(server):
    head = (b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Transfer-Encoding: chunked\r\n\r\n")
    chunk = b"x" * 16384
    body = b"".join(b"%x\r\n" % len(chunk) + chunk + b"\r\n" for _ in range(8)) + b"0\r\n\r\n"  # 128 KiB
    answer = raw_request(server, head, body)
    assert status_of(answer) == 413 and b"error" in answer
    assert alive(server)


def test_the_limit_also_guards_the_recommender_app():
    from fastapi import FastAPI
    from fastapi.testclient import TestClient

    from lucidrec.serve.security import BodyLimitMiddleware

    app = FastAPI()

    @app.post("/echo")
    async def echo(payload: dict):
        return {"keys": len(payload)}

    app.add_middleware(BodyLimitMiddleware, limit=2048)
    client = TestClient(app)
    assert client.post("/echo", json={"a": "b" * 100}).json() == {"keys": 1}
    assert client.post("/echo", json={"a": "b" * 5000}).status_code == 413

    def stream():  # no Content-Length at all: the body is counted as it arrives
        for _ in range(10):
            yield b"x" * 1024

    assert client.post("/echo", content=stream()).status_code == 413


@pytest.mark.parametrize("messages", [["hello", "world"], "hello", [{"role": "user", "content": 5}],
                                      [{"role": "user", "content": [{"type": "text", "text": 5}]}], [None]])
def test_malformed_chat_requests_are_openai_style_400s(server, messages):
    response = httpx.post(server.url + "/chat/completions", json={"messages": messages}, timeout=10)
    assert response.status_code == 400 and response.json()["error"]["type"] == "invalid_request_error"
    assert alive(server)


def test_fifty_concurrent_clients_get_answers_not_resets(server):
    def call(_):
        with httpx.Client(timeout=30) as client:
            return client.post(server.url + "/chat/completions", json=CHAT).status_code

    with ThreadPoolExecutor(50) as pool:
        codes = list(pool.map(call, range(50)))
    assert codes == [200] * 50


def test_idle_connections_cost_no_threads(server):
    before = threading.active_count()
    sockets = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(200)]
    try:
        time.sleep(0.3)
        assert threading.active_count() - before < 5
        assert alive(server)
    finally:
        for sock in sockets:
            sock.close()


def test_requests_beyond_the_in_flight_bound_get_503_with_retry_after():
    def slow(request):
        time.sleep(0.4)
        return "ok"

    with lm_server(ServeConfig(max_pending=2), model_options={"responder": slow}, max_batch=1) as server:
        def call(_):
            return httpx.post(server.url + "/chat/completions", json=CHAT, timeout=30)

        with ThreadPoolExecutor(8) as pool:
            answers = list(pool.map(call, range(8)))
        codes = sorted(a.status_code for a in answers)
        assert codes.count(200) >= 2 and codes.count(503) >= 4 and set(codes) <= {200, 503}
        busy = next(a for a in answers if a.status_code == 503)
        assert busy.headers["retry-after"] == "1" and "busy" in busy.json()["error"]["message"]
        assert alive(server)  # the bound frees up again


def test_api_key_is_required_compared_and_never_logged(monkeypatch, caplog, capfd):
    monkeypatch.setenv("LUCIDREC_API_KEY", KEY)
    config = ServeConfig.from_env()
    assert KEY not in repr(config) and KEY not in str(config.model_dump())
    caplog.set_level(logging.DEBUG)
    with lm_server(config) as server:
        url = server.url + "/chat/completions"
        assert httpx.post(url, json=CHAT).status_code == 401
        wrong = httpx.post(url, json=CHAT, headers={"Authorization": "Bearer " + KEY[:-1] + "x"})
        assert wrong.status_code == 401 and wrong.json()["error"]["type"] == "authentication_error"
        assert httpx.post(url, json=CHAT, headers={"Authorization": "Bearer " + KEY}).status_code == 200
        assert httpx.post(url, json=CHAT, headers={"X-API-Key": KEY}).status_code == 200
        assert httpx.get(server.url + "/models", headers={"X-API-Key": "nope"}).status_code == 401
        assert httpx.get(server.base_url + "/health").status_code == 200  # liveness stays open
    out, err = capfd.readouterr()
    assert KEY not in caplog.text and KEY not in out and KEY not in err


def test_the_key_is_compared_in_constant_time(monkeypatch):
    import hmac

    from lucidrec.serve import security

    calls, real = [], hmac.compare_digest
    monkeypatch.setattr(security.hmac, "compare_digest", lambda a, b: calls.append((a, b)) or real(a, b))
    check = security.api_key_dependency(ServeConfig(api_key=KEY))
    asyncio.run(check(bearer=None, header=KEY))
    assert calls == [(KEY.encode(), KEY.encode())]


def test_loopback_by_default_and_a_warning_otherwise(capsys):
    import inspect

    from lucidrec.cli.lm import serve as lm_serve
    from lucidrec.cli.serve import serve
    from lucidrec.serve.server import warn_if_exposed

    for command in (serve, lm_serve):
        assert inspect.signature(command).parameters["host"].default.default == "127.0.0.1"
    warn_if_exposed("127.0.0.1", ServeConfig())
    assert capsys.readouterr().err == ""
    warn_if_exposed("0.0.0.0", ServeConfig())
    warning = capsys.readouterr().err
    assert "0.0.0.0: reachable from other machines" in warning and "NO API key" in warning
