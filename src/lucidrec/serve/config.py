"""Limits and security settings shared by both HTTP apps (one place, so both enforce the same rules)."""

from __future__ import annotations

import os

from pydantic import Field, SecretStr

from lucidrec.config import StrictConfig

API_KEY_ENV = "LUCIDREC_API_KEY"
LOOPBACK = "127.0.0.1"


class ServeConfig(StrictConfig):
    """What a client may ask for and how much work the server accepts at once."""

    api_key: SecretStr | None = Field(None, description=f"Required key (default ${API_KEY_ENV}); None: open.")
    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest request body, whatever Content-Length says.")
    max_k: int = Field(100, ge=1, description="Largest number of items one request may ask for.")
    max_history: int = Field(1000, ge=1, description="Longest ad-hoc history one request may send.")
    max_pending: int = Field(64, ge=1, description="Scoring requests in flight at once; more are answered 503.")
    max_readings: int = Field(2, ge=1, description="RecInterpreter state readings in flight at once (each run's LM "
                              "generates one at a time, the others wait); more are answered 503.")
    reading_cache: int = Field(1024, ge=1, description="State readings kept per run (least recently used dropped).")
    max_batch: int = Field(64, ge=1, description="Requests scored together in one forward pass.")
    batch_wait_ms: float = Field(0.0, ge=0.0, description="How long to wait for more requests before scoring a batch; "
                                 "0: score at once whatever queued while the previous batch ran (no added latency).")
    max_connections: int = Field(1000, ge=1, description="Open connections uvicorn accepts; more are answered 503.")
    backlog: int = Field(2048, ge=1, description="Listen queue length (connections waiting for accept).")
    keep_alive_seconds: int = Field(5, ge=1, description="Idle keep-alive connections are closed after this.")

    @classmethod
    def from_env(cls, **values) -> "ServeConfig":
        """The API key comes from the environment unless given: never from a command-line flag, which
        would show in the process list and the shell history."""
        key = os.environ.get(API_KEY_ENV)
        if "api_key" not in values and key:
            values["api_key"] = key
        return cls(**values)


def is_loopback(host: str) -> bool:
    return host in ("localhost", "::1") or host.startswith("127.")
