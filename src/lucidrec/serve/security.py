"""The API key check, the request-body limit and the bound on concurrent scoring requests."""

from __future__ import annotations

import hmac
import threading
from contextlib import contextmanager

from fastapi import Depends, HTTPException
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from lucidrec.serve.config import API_KEY_ENV, ServeConfig

_bearer = HTTPBearer(auto_error=False, description=f"The key set in ${API_KEY_ENV} (when set).")
_header = APIKeyHeader(name="X-API-Key", auto_error=False, description=f"The key set in ${API_KEY_ENV} (when set).")


def api_key_dependency(config: ServeConfig):
    """A FastAPI dependency: with a key configured, ``Authorization: Bearer KEY`` or ``X-API-Key: KEY``
    must match it (compared in constant time); without one, every request passes."""
    expected = config.api_key.get_secret_value().encode("utf-8") if config.api_key else None

    async def check(bearer: HTTPAuthorizationCredentials | None = Depends(_bearer),
                    header: str | None = Depends(_header)) -> None:  # async: no thread-pool hop per request
        if expected is None:
            return
        given = header if header is not None else (bearer.credentials if bearer is not None else None)
        if given is None or not hmac.compare_digest(given.encode("utf-8"), expected):
            raise HTTPException(401, "missing or wrong API key (send 'Authorization: Bearer KEY' or 'X-API-Key: KEY')",
                                headers={"WWW-Authenticate": "Bearer"})

    return check


class BodyTooLarge(HTTPException):
    def __init__(self, limit: int):
        super().__init__(413, f"request body over {limit} bytes")


class BodyLimitMiddleware:
    """Rejects bodies over ``limit`` bytes by counting what arrives, not by trusting Content-Length: a
    declared length over the limit is refused before reading, and a body that keeps coming past the
    limit (chunked, or a lying header) is cut off at the limit. Malformed Content-Length headers never
    reach here: the HTTP parser answers them with 400."""

    def __init__(self, app: ASGIApp, limit: int):
        self.app, self.limit = app, limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers") or []).get(b"content-length")
        if declared is not None and declared.isdigit() and int(declared) > self.limit:
            await _plain_error(send, 413, f"request body over {self.limit} bytes")
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.limit:
                    raise BodyTooLarge(self.limit)
            return message

        await self.app(scope, limited_receive, send)


async def _plain_error(send: Send, status: int, detail: str) -> None:
    import json

    body = json.dumps({"detail": detail}).encode()
    await send({"type": "http.response.start", "status": status,
                "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode()),
                            (b"connection", b"close")]})
    await send({"type": "http.response.body", "body": body})


class Busy(HTTPException):
    def __init__(self, limit: int, what: str = "scoring requests", retry_after: int = 1):
        super().__init__(503, f"server busy: {limit} {what} in flight; retry shortly",
                         headers={"Retry-After": str(retry_after)})


class ScoringGate:
    """At most ``limit`` requests of one kind in flight (scoring, or state readings); the next one is
    refused at once (503 + Retry-After), so a burst never builds an unbounded queue or exhausts memory."""

    def __init__(self, limit: int, what: str = "scoring requests", retry_after: int = 1):
        self.limit, self.what, self.retry_after = limit, what, retry_after
        self._in_flight = 0
        self._lock = threading.Lock()

    @property
    def in_flight(self) -> int:
        return self._in_flight

    @contextmanager
    def slot(self):
        with self._lock:
            if self._in_flight >= self.limit:
                raise Busy(self.limit, self.what, self.retry_after)
            self._in_flight += 1
        try:
            yield
        finally:
            with self._lock:
                self._in_flight -= 1


