"""Running an app with uvicorn: in the foreground (the CLI) or on a background thread (tests, notebooks)."""

from __future__ import annotations

import sys
import threading
import time

import uvicorn

from lucidrec.serve.config import ServeConfig, is_loopback


def uvicorn_config(app, host: str, port: int, config: ServeConfig, log_level: str = "info") -> uvicorn.Config:
    return uvicorn.Config(app, host=host, port=port, log_level=log_level, backlog=config.backlog,
                          limit_concurrency=config.max_connections, timeout_keep_alive=config.keep_alive_seconds,
                          server_header=False, lifespan="on")


def warn_if_exposed(host: str, config: ServeConfig) -> None:
    if not is_loopback(host):
        key = "an API key is required" if config.api_key else "NO API key is set (set LUCIDREC_API_KEY)"
        print(f"warning: listening on {host}: reachable from other machines; {key}", file=sys.stderr)


class BackgroundServer:
    """uvicorn on a daemon thread; port 0 picks a free port (``.port``, ``.base_url``)."""

    def __init__(self, app, host: str = "127.0.0.1", port: int = 0, config: ServeConfig | None = None,
                 log_level: str = "warning"):
        self.server = uvicorn.Server(uvicorn_config(app, host, port, config or ServeConfig(), log_level))
        self.server.install_signal_handlers = lambda: None  # only the main thread may install them
        self._thread = threading.Thread(target=self.server.run, name="lucidrec-http", daemon=True)
        self.host = host
        self.port = port

    def start(self, timeout: float = 30.0) -> "BackgroundServer":
        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self.server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError(f"the HTTP server did not start on {self.host}:{self.port}")
            time.sleep(0.02)
        self.port = self.server.servers[0].sockets[0].getsockname()[1]
        return self

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def close(self) -> None:
        self.server.should_exit = True
        self._thread.join(timeout=10)

    def __enter__(self) -> "BackgroundServer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()
