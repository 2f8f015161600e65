"""A small OpenAI-compatible chat-completions server for any local ChatModel (stdlib only).

Endpoints: ``GET /v1/models``, ``GET /health``, ``POST /v1/chat/completions`` (non-streaming;
``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``,
``logprobs`` + ``top_logprobs``). Requests arriving within ``batch_wait`` seconds of each other
are generated together (up to ``max_batch``), so concurrent clients get batched generation.
The server answers to any ``model`` name in a request: it serves exactly one model.
Errors use the OpenAI shape ``{"error": {"message", "type", "code"}}``: 400 for bad requests
and prompts that do not fit the context window, 500 for backend failures.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import uuid
from concurrent.futures import Future
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from pydantic import ValidationError

from lucidrec.lm.chat.base import ChatModel
from lucidrec.lm.chat.messages import ChatResponse
from lucidrec.lm.errors import ContextLengthError

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 16 * 1024 * 1024


class MicroBatcher:
    """Collects requests for ``wait`` seconds (or ``max_batch`` of them) and completes them together."""

    def __init__(self, model: ChatModel, max_batch: int = 16, wait: float = 0.02, no_cache: bool = True):
        self.model, self.max_batch, self.wait, self.no_cache = model, max_batch, wait, no_cache
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._loop, name="lucidrec-batcher", daemon=True)
        self._thread.start()

    def submit(self, request) -> ChatResponse:
        future: Future = Future()
        self._queue.put((request, future))
        return future.result()

    def _loop(self) -> None:
        while True:
            item = self._queue.get()
            if item is None:
                return
            batch = [item]
            deadline = time.monotonic() + self.wait
            while len(batch) < self.max_batch:
                remaining = deadline - time.monotonic()
                try:
                    nxt = self._queue.get(timeout=max(remaining, 0)) if remaining > 0 else self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    self._queue.put(None)
                    break
                batch.append(nxt)
            try:
                responses = self.model.complete_many([r for r, _ in batch], errors="return", no_cache=self.no_cache,
                                                     show_progress=False)
                for (_, future), response in zip(batch, responses):
                    future.set_result(response)
            except Exception as exc:  # a bug in a backend must not kill the server
                log.exception("batch of %d failed", len(batch))
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)

    def stop(self) -> None:
        self._queue.put(None)
        self._thread.join(timeout=5)


class ChatCompletionServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, model: ChatModel, host: str = "127.0.0.1", port: int = 0, *, model_name: str | None = None,
                 max_batch: int = 16, batch_wait: float = 0.02, use_cache: bool = False):
        super().__init__((host, port), _Handler)
        self.chat = model
        self.model_name = model_name or model.model_id.split("@")[0]
        self.batcher = MicroBatcher(model, max_batch, batch_wait, no_cache=not use_cache)
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host, port = self.server_address[:2]
        return f"http://{host}:{port}/v1"

    def start(self) -> "ChatCompletionServer":
        self._thread = threading.Thread(target=self.serve_forever, name="lucidrec-lm-server", daemon=True)
        self._thread.start()
        return self

    def close(self) -> None:
        self.shutdown()
        self.server_close()
        self.batcher.stop()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def serve_in_thread(model: ChatModel, host: str = "127.0.0.1", port: int = 0, **kwargs) -> ChatCompletionServer:
    """Start a server on a background thread (port 0: a free port); ``.url`` is the base URL."""
    return ChatCompletionServer(model, host, port, **kwargs).start()


class BadRequest(Exception):
    pass


def _text_content(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text", "") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content):
            return "".join(parts)
    raise BadRequest("message content must be a string or a list of text parts")


def parse_chat_request(model: ChatModel, body: dict):
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise BadRequest("'messages' must be a non-empty list")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server; send stream=false")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    messages = [{"role": m.get("role"), "content": _text_content(m.get("content"))} for m in body["messages"]]
    sampling = {}
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    if max_tokens is not None:
        sampling["max_tokens"] = max_tokens
    for name in ("temperature", "top_p", "seed"):
        if body.get(name) is not None:
            sampling[name] = body[name]
    if body.get("stop") is not None:
        sampling["stop"] = [body["stop"]] if isinstance(body["stop"], str) else body["stop"]
    if body.get("logprobs"):
        sampling["top_logprobs"] = int(body.get("top_logprobs") or 0)
    try:
        return model.request(messages, **sampling)
    except (ValueError, TypeError, ValidationError) as exc:
        raise BadRequest(str(exc)) from None


def _logprobs_json(response: ChatResponse) -> dict | None:
    if response.logprobs is None:
        return None

    def entry(token: str, logprob: float) -> dict:
        return {"token": token, "logprob": logprob, "bytes": list(token.encode("utf-8"))}

    return {"content": [{**entry(t.token, t.logprob), "top_logprobs": [entry(a, lp) for a, lp in t.top]}
                        for t in response.logprobs]}


def completion_json(response: ChatResponse, model_name: str) -> dict:
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex[:24]}",
        "object": "chat.completion",
        "created": int(time.time()),
        "model": model_name,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": response.text},
                     "finish_reason": response.finish_reason, "logprobs": _logprobs_json(response)}],
        "usage": {"prompt_tokens": response.prompt_tokens, "completion_tokens": response.completion_tokens,
                  "total_tokens": response.prompt_tokens + response.completion_tokens},
    }


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive: the openai client reuses connections
    server: ChatCompletionServer

    def log_message(self, fmt, *args) -> None:
        log.debug("%s - " + fmt, self.address_string(), *args)

    def _send(self, status: int, payload: dict) -> None:
        data = json.dumps(payload).encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, message: str, kind: str, code: str | None = None) -> None:
        self._send(status, {"error": {"message": message, "type": kind, "code": code}})

    def do_GET(self) -> None:
        path = self.path.rstrip("/")
        if path in ("/v1/models", "/models"):
            self._send(200, {"object": "list", "data": [{"id": self.server.model_name, "object": "model",
                                                          "created": 0, "owned_by": "lucidrec"}]})
        elif path in ("/health", "/v1/health"):
            self._send(200, {"status": "ok", "model": self.server.model_name})
        else:
            self._error(404, f"no route {self.path}", "not_found")

    def do_POST(self) -> None:
        if self.path.rstrip("/") not in ("/v1/chat/completions", "/chat/completions"):
            length = int(self.headers.get("Content-Length") or 0)
            self.rfile.read(min(length, MAX_BODY_BYTES))
            self._error(404, f"no route {self.path}", "not_found")
            return
        try:
            length = int(self.headers.get("Content-Length") or 0)
            if length > MAX_BODY_BYTES:
                raise BadRequest(f"request body over {MAX_BODY_BYTES} bytes")
            body = json.loads(self.rfile.read(length) or b"null")
            request = parse_chat_request(self.server.chat, body)
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as exc:
            self._error(400, f"invalid request: {exc}", "invalid_request_error")
            return
        try:
            response = self.server.batcher.submit(request)
        except Exception as exc:
            self._error(500, f"{type(exc).__name__}: {exc}", "server_error")
            return
        if not response.ok:
            if isinstance(response.exception, ContextLengthError):
                self._error(400, response.error, "invalid_request_error", "context_length_exceeded")
            else:
                self._error(500, f"{response.error_type}: {response.error}", "server_error")
            return
        self._send(200, completion_json(response, self.server.model_name))
