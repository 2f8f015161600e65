"""Persistent text-vector cache: (model identity, sha1 of the exact text) -> float32 vector.

Layout: ``<cache root>/vectors/vectors.sqlite`` with a ``models`` table (identity -> small int and
dimension) and a ``vectors`` table keyed by (model, 20-byte sha1) holding raw float32 bytes.
Lookups go in chunks of a few hundred keys per query, so re-reading 12k vectors takes well under
a second; a texts' vectors are written once per encoder chunk, in one transaction.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Sequence

import numpy as np

from lucidrec.lm.sqlite_store import SQLiteStore, chunks

SCHEMA = """
CREATE TABLE IF NOT EXISTS models (id INTEGER PRIMARY KEY, identity TEXT UNIQUE NOT NULL, dim INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS vectors (
    model INTEGER NOT NULL, text_key BLOB NOT NULL, vector BLOB NOT NULL,
    PRIMARY KEY (model, text_key)
) WITHOUT ROWID;
"""


def text_key(text: str) -> bytes:
    return hashlib.sha1(text.encode("utf-8")).digest()


class VectorCache:
    def __init__(self, path: str | Path):
        self.store = SQLiteStore(path, SCHEMA)

    @classmethod
    def in_dir(cls, cache_root: str | Path) -> "VectorCache":
        return cls(Path(cache_root) / "vectors" / "vectors.sqlite")

    @property
    def path(self) -> Path:
        return self.store.path

    def _model_id(self, identity: str, dim: int | None = None) -> tuple[int, int] | None:
        conn = self.store.connection()
        row = conn.execute("SELECT id, dim FROM models WHERE identity = ?", (identity,)).fetchone()
        if row is None and dim is not None:
            with self.store.write() as wconn:
                wconn.execute("INSERT OR IGNORE INTO models (identity, dim) VALUES (?, ?)", (identity, dim))
            row = conn.execute("SELECT id, dim FROM models WHERE identity = ?", (identity,)).fetchone()
        return (row[0], row[1]) if row else None

    def dim(self, identity: str) -> int | None:
        found = self._model_id(identity)
        return found[1] if found else None

    def get_many(self, identity: str, keys: Sequence[bytes]) -> dict[bytes, np.ndarray]:
        found = self._model_id(identity)
        if found is None or not keys:
            return {}
        model, dim = found
        conn = self.store.connection()
        out: dict[bytes, np.ndarray] = {}
        for part in chunks(list(keys)):
            marks = ",".join("?" * len(part))
            query = f"SELECT text_key, vector FROM vectors WHERE model = ? AND text_key IN ({marks})"
            for key, blob in conn.execute(query, (model, *part)):
                out[key] = np.frombuffer(blob, dtype=np.float32, count=dim)
        return out

    def put_many(self, identity: str, keys: Sequence[bytes], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        model, dim = self._model_id(identity, dim=vectors.shape[1])
        if dim != vectors.shape[1]:
            raise ValueError(f"cache holds {dim}-d vectors for {identity}, got {vectors.shape[1]}-d")
        rows = [(model, key, vectors[i].tobytes()) for i, key in enumerate(keys)]
        with self.store.write() as conn:
            conn.executemany("INSERT OR REPLACE INTO vectors (model, text_key, vector) VALUES (?, ?, ?)", rows)

    def stats(self) -> dict:
        conn = self.store.connection()
        per_model = conn.execute(
            "SELECT m.identity, m.dim, COUNT(v.text_key) FROM models m LEFT JOIN vectors v ON v.model = m.id GROUP BY m.id"
        ).fetchall()
        return {
            "path": str(self.path),
            "size_bytes": self.store.size_bytes(),
            "vectors": sum(n for _, _, n in per_model),
            "models": [{"identity": i, "dim": d, "vectors": n} for i, d, n in per_model],
        }

    def clear(self, identity: str | None = None) -> int:
        with self.store.write() as conn:
            if identity is None:
                removed = conn.execute("DELETE FROM vectors").rowcount
                conn.execute("DELETE FROM models")
            else:
                removed = conn.execute(
                    "DELETE FROM vectors WHERE model IN (SELECT id FROM models WHERE identity = ?)", (identity,)
                ).rowcount
                conn.execute("DELETE FROM models WHERE identity = ?", (identity,))
        return removed

    def close(self) -> None:
        self.store.close()
