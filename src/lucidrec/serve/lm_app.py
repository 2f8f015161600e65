"""An OpenAI-compatible chat-completions API for any local ChatModel (``lucidrec lm serve``).

Endpoints: ``GET /v1/models``, ``GET /health``, ``POST /v1/chat/completions`` (non-streaming;
``max_tokens`` / ``max_completion_tokens``, ``temperature``, ``top_p``, ``stop``, ``seed``,
``logprobs`` + ``top_logprobs``), also without the ``/v1`` prefix. Requests arriving within
``batch_wait_ms`` of each other are generated together (up to ``max_batch``). The server answers to
any ``model`` name in a request: it serves exactly one model. Errors use the OpenAI shape
``{"error": {"message", "type", "code"}}``: 400 for bad requests and prompts that do not fit the
context window, 401 for a missing or wrong API key, 413 for a body over the limit, 503 when
``max_pending`` requests are already in flight, 500 for backend failures.
"""

from __future__ import annotations

import json
import time
import uuid

from fastapi import Depends, FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from lucidrec.lm.chat.base import ChatModel
from lucidrec.lm.chat.messages import ChatResponse
from lucidrec.lm.errors import ContextLengthError
from lucidrec.serve.batching import MicroBatcher
from lucidrec.serve.config import ServeConfig
from lucidrec.serve.docs_pages import api_app
from lucidrec.serve.security import BodyLimitMiddleware, ScoringGate, api_key_dependency
from lucidrec.serve.server import BackgroundServer

_ERROR_TYPES = {400: "invalid_request_error", 401: "authentication_error", 404: "not_found", 413: "invalid_request_error",
                422: "invalid_request_error", 503: "server_busy"}


class BadRequest(Exception):
    pass


def _text_content(content) -> str:
    if isinstance(content, str):
        return content
    if isinstance(content, list):  # [{"type": "text", "text": ...}, ...]
        parts = [p.get("text") for p in content if isinstance(p, dict) and p.get("type") == "text"]
        if len(parts) == len(content) and all(isinstance(p, str) for p in parts):
            return "".join(parts)
    raise BadRequest("message content must be a string or a list of text parts")


def parse_chat_request(model: ChatModel, body):
    if not isinstance(body, dict) or not isinstance(body.get("messages"), list) or not body["messages"]:
        raise BadRequest("'messages' must be a non-empty list")
    if body.get("stream"):
        raise BadRequest("streaming is not supported by this server; send stream=false")
    if body.get("n", 1) != 1:
        raise BadRequest("only n=1 is supported")
    if not all(isinstance(m, dict) for m in body["messages"]):
        raise BadRequest("each message must be an object with 'role' and 'content'")
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
    try:
        if body.get("logprobs"):
            sampling["top_logprobs"] = int(body.get("top_logprobs") or 0)
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


def openai_error(status: int, message: str, kind: str | None = None, code: str | None = None,
                 headers: dict | None = None) -> JSONResponse:
    return JSONResponse({"error": {"message": message, "type": kind or _ERROR_TYPES.get(status, "server_error"),
                                   "code": code}}, status_code=status, headers=headers)


def create_lm_app(model: ChatModel, *, model_name: str | None = None, config: ServeConfig | None = None,
                  max_batch: int = 16, batch_wait: float = 0.02, use_cache: bool = False) -> FastAPI:
    config = config or ServeConfig.from_env()
    name = model_name or model.model_id.split("@")[0]
    batcher = MicroBatcher(lambda requests: model.complete_many(list(requests), errors="return", no_cache=not use_cache,
                                                                show_progress=False),
                           max_batch=max_batch, wait=batch_wait, name="lucidrec-lm-batcher")
    gate = ScoringGate(config.max_pending)
    secured = [Depends(api_key_dependency(config))]

    from contextlib import asynccontextmanager

    @asynccontextmanager
    async def lifespan(_app):
        yield
        batcher.stop()

    app = api_app(title="lucidrec language model", version="1", lifespan=lifespan,
                  description="OpenAI-compatible chat completions for a local model.")
    app.state.chat, app.state.model_name, app.state.batcher, app.state.gate = model, name, batcher, gate
    app.add_middleware(BodyLimitMiddleware, limit=config.max_body_bytes)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_request, exc: StarletteHTTPException):
        return openai_error(exc.status_code, str(exc.detail), headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def validation_error(_request, exc: RequestValidationError):
        return openai_error(400, f"invalid request: {exc.errors()}")

    def models_list():
        return {"object": "list", "data": [{"id": name, "object": "model", "created": 0, "owned_by": "lucidrec"}]}

    def health():
        return {"status": "ok", "model": name}

    async def chat_completions(request: Request):
        try:
            body = json.loads(await request.body() or b"null")
            chat_request = parse_chat_request(model, body)
        except (BadRequest, json.JSONDecodeError, UnicodeDecodeError) as exc:
            return openai_error(400, f"invalid request: {exc}", "invalid_request_error")
        with gate.slot():
            try:
                response = await batcher.run(chat_request)
            except Exception as exc:
                return openai_error(500, f"{type(exc).__name__}: {exc}", "server_error")
        if not response.ok:
            if isinstance(response.exception, ContextLengthError):
                return openai_error(400, response.error, "invalid_request_error", "context_length_exceeded")
            return openai_error(500, f"{response.error_type}: {response.error}", "server_error")
        return completion_json(response, name)

    for prefix in ("/v1", ""):
        app.add_api_route(f"{prefix}/models", models_list, methods=["GET"], dependencies=secured,
                          include_in_schema=bool(prefix))
        app.add_api_route(f"{prefix}/health", health, methods=["GET"], include_in_schema=not prefix)
        app.add_api_route(f"{prefix}/chat/completions", chat_completions, methods=["POST"], dependencies=secured,
                          include_in_schema=bool(prefix))
    return app


class ChatCompletionServer(BackgroundServer):
    """The chat-completions app on a background thread; ``.url`` is the OpenAI base URL (``.../v1``)."""

    def __init__(self, model: ChatModel, host: str = "127.0.0.1", port: int = 0, *, config: ServeConfig | None = None,
                 **app_options):
        config = config or ServeConfig.from_env()
        self.app = create_lm_app(model, config=config, **app_options)
        self.model_name = self.app.state.model_name
        super().__init__(self.app, host, port, config)

    @property
    def url(self) -> str:
        return f"{self.base_url}/v1"


def serve_in_thread(model: ChatModel, host: str = "127.0.0.1", port: int = 0, **options) -> ChatCompletionServer:
    """Start a server on a background thread (port 0: a free port); ``.url`` is the base URL."""
    return ChatCompletionServer(model, host, port, **options).start()
