"""Persistent LLM response cache (SQLite, WAL mode).

Layout: ``<cache root>/llm/responses.sqlite``, one ``responses`` table keyed by the sha256 of the
canonical JSON of (kind, backend, model identity, prompt-template name + version, rendered
messages, sampling parameters, explicit record key, extra). ``kind`` separates plain completions
(``chat``), choice scores (``score``) and validated structured answers (``structured:<schema>``).
The request itself is stored beside the answer, so the cache can be inspected or exported.

Only successful answers are ever written (callers pass an ``accept`` check for structured output),
and each write is a single short transaction: concurrent writers from several processes queue on
SQLite's lock, and a killed process leaves at most an uncommitted transaction that is rolled back.
"""

from __future__ import annotations

import hashlib
import json
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from lucidrec.lm.sqlite_store import SQLiteStore, chunks

SCHEMA = """
CREATE TABLE IF NOT EXISTS responses (
    key TEXT PRIMARY KEY,
    kind TEXT NOT NULL,
    backend TEXT NOT NULL,
    model TEXT NOT NULL,
    template TEXT,
    template_version TEXT,
    request TEXT NOT NULL,
    payload TEXT NOT NULL,
    created REAL NOT NULL
) WITHOUT ROWID;
"""


def canonical_json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def cache_key(parts: dict) -> str:
    return hashlib.sha256(canonical_json(parts).encode("utf-8")).hexdigest()


@dataclass
class CacheEntry:
    key: str
    kind: str
    backend: str
    model: str
    request: dict
    payload: dict
    template: str | None = None
    template_version: str | None = None


class ResponseCache:
    def __init__(self, path: str | Path):
        self.store = SQLiteStore(path, SCHEMA)
        self._lock = threading.Lock()
        self.hits = self.misses = self.writes = 0

    @classmethod
    def in_dir(cls, cache_root: str | Path) -> "ResponseCache":
        return cls(Path(cache_root) / "llm" / "responses.sqlite")

    @property
    def path(self) -> Path:
        return self.store.path

    def get_many(self, keys: Sequence[str]) -> dict[str, dict]:
        conn = self.store.connection()
        found: dict[str, dict] = {}
        unique = list(dict.fromkeys(keys))
        for part in chunks(unique):
            marks = ",".join("?" * len(part))
            for key, payload in conn.execute(f"SELECT key, payload FROM responses WHERE key IN ({marks})", part):
                found[key] = json.loads(payload)
        with self._lock:
            self.hits += sum(1 for k in keys if k in found)
            self.misses += sum(1 for k in keys if k not in found)
        return found

    def get(self, key: str) -> dict | None:
        return self.get_many([key]).get(key)

    def put_many(self, entries: Iterable[CacheEntry]) -> int:
        now = time.time()
        rows = [
            (e.key, e.kind, e.backend, e.model, e.template, e.template_version, canonical_json(e.request),
             canonical_json(e.payload), now)
            for e in entries
        ]
        if not rows:
            return 0
        with self.store.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO responses VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
        with self._lock:
            self.writes += len(rows)
        return len(rows)

    def forget(self, keys: Sequence[str]) -> int:
        removed = 0
        with self.store.write() as conn:
            for part in chunks(list(keys)):
                marks = ",".join("?" * len(part))
                removed += conn.execute(f"DELETE FROM responses WHERE key IN ({marks})", part).rowcount
        return removed

    def session_stats(self) -> dict:
        with self._lock:
            return {"hits": self.hits, "misses": self.misses, "writes": self.writes}

    def stats(self) -> dict:
        conn = self.store.connection()
        groups = conn.execute(
            "SELECT backend, model, kind, COUNT(*) FROM responses GROUP BY backend, model, kind ORDER BY 4 DESC"
        ).fetchall()
        return {
            "path": str(self.path),
            "size_bytes": self.store.size_bytes(),
            "entries": sum(n for *_, n in groups),
            "groups": [{"backend": b, "model": m, "kind": k, "entries": n} for b, m, k, n in groups],
            "session": self.session_stats(),
        }

    def entries(self, kind: str | None = None) -> Iterable[dict]:
        """Stored entries (request and payload decoded), oldest first: for inspection and export."""
        query = "SELECT key, kind, backend, model, template, template_version, request, payload, created FROM responses"
        params: tuple = ()
        if kind is not None:
            query, params = query + " WHERE kind = ?", (kind,)
        for row in self.store.connection().execute(query + " ORDER BY created", params):
            yield {"key": row[0], "kind": row[1], "backend": row[2], "model": row[3], "template": row[4],
                   "template_version": row[5], "request": json.loads(row[6]), "payload": json.loads(row[7]),
                   "created": row[8]}

    def clear(self, backend: str | None = None, model: str | None = None) -> int:
        clauses, params = [], []
        for column, value in (("backend", backend), ("model", model)):
            if value is not None:
                clauses.append(f"{column} = ?")
                params.append(value)
        where = f" WHERE {' AND '.join(clauses)}" if clauses else ""
        with self.store.write() as conn:
            return conn.execute(f"DELETE FROM responses{where}", params).rowcount

    def integrity_ok(self) -> bool:
        return self.store.connection().execute("PRAGMA integrity_check").fetchone()[0] == "ok"

    def close(self) -> None:
        self.store.close()
