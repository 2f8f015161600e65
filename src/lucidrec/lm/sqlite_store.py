"""SQLite plumbing shared by the vector and response caches.

WAL journal mode lets readers proceed while one writer commits and survives a killed process (an
interrupted transaction is rolled back on the next open). Every write is one short
``BEGIN IMMEDIATE`` transaction, so concurrent writers from several processes queue on the lock
(``busy_timeout``) instead of failing with "database is locked".
"""

from __future__ import annotations

import os
import sqlite3
import threading
from contextlib import contextmanager
from pathlib import Path

from lucidrec.errors import LucidrecError

BUSY_TIMEOUT_MS = 60_000


class SQLiteStore:
    """One database file; a connection per (process, thread), opened lazily."""

    def __init__(self, path: str | os.PathLike, schema: str):
        self.path = Path(path).expanduser()
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._schema = schema
        self._local = threading.local()
        try:
            self.connection().executescript(schema)  # idempotent (IF NOT EXISTS); autocommits
        except sqlite3.DatabaseError as exc:  # e.g. "file is not a database": say which file
            raise LucidrecError(f"{self.path}: not a usable cache database ({exc}); move it away or delete it "
                                "(its answers will be asked again)") from None

    def connection(self) -> sqlite3.Connection:
        conn = getattr(self._local, "conn", None)
        # A connection must not cross a fork: the child opens its own.
        if conn is None or self._local.pid != os.getpid():
            conn = sqlite3.connect(self.path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None,
                                   check_same_thread=False)
            conn.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_MS}")
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")  # WAL + NORMAL: durable against process crashes
            self._local.conn, self._local.pid = conn, os.getpid()
        return conn

    @contextmanager
    def write(self):
        conn = self.connection()
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield conn
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def size_bytes(self) -> int:
        return sum(p.stat().st_size for p in self.path.parent.glob(self.path.name + "*") if p.is_file())

    def close(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None and self._local.pid == os.getpid():
            conn.close()
        self._local = threading.local()


def chunks(values: list, size: int = 900):
    """Slices small enough for SQLite's limit on bound parameters."""
    for start in range(0, len(values), size):
        yield values[start:start + size]
