"""TextEncoder: sentence-transformers behind a persistent vector cache.

``encode(texts)`` returns an L2-normalised float32 matrix aligned with ``texts``. Each distinct
text is looked up by (encoder identity, sha1 of the exact text); only misses reach the model, which
is loaded lazily, so a fully cached re-run never loads it. Misses are encoded longest-first in
chunks (as sentence-transformers itself orders them) and each chunk is written to the cache as it
finishes, so an interrupted run keeps its progress.
"""

from __future__ import annotations

import logging
import sys
import time
from pathlib import Path
from typing import Sequence

import numpy as np

from lucidrec.lm.config import EncoderConfig
from lucidrec.lm.errors import EmptyTextError
from lucidrec.lm.models import ModelLocation, load_sentence_transformer, locate_encoder
from lucidrec.lm.vector_cache import VectorCache, text_key

log = logging.getLogger(__name__)
CHUNK_BATCHES = 16  # model.encode calls see batch_size * CHUNK_BATCHES texts at a time


class TextEncoder:
    """Cached, batched sentence encoder.

    ``TextEncoder()`` is the offline default (all-MiniLM-L6-v2); pass a hub id or folder, or an
    :class:`EncoderConfig`. Keyword overrides (``batch_size=``, ``show_progress=``, ...) update the
    config; ``cache_dir=`` sets the cache root and ``no_cache=True`` disables the cache. To use an
    already-loaded sentence-transformers object (a fine-tuned model in memory, tests) pass
    ``st_model=`` together with an ``identity=`` naming it, so its vectors never mix with another
    model's in the cache.
    """

    def __init__(self, model: str | EncoderConfig | None = None, *, cache_dir: str | Path | None = None,
                 no_cache: bool = False, st_model=None, identity: str | None = None, **overrides):
        config = model if isinstance(model, EncoderConfig) else EncoderConfig(**({"model": model} if model else {}))
        if cache_dir is not None or no_cache:
            cache = config.cache.model_copy(update={
                **({"dir": Path(cache_dir)} if cache_dir is not None else {}),
                **({"enabled": False} if no_cache else {}),
            })
            overrides["cache"] = cache
        self.config = config.model_copy(update=overrides) if overrides else config
        if st_model is not None and identity is None:
            raise ValueError("an injected st_model needs an explicit identity= for the vector cache")
        self._model = st_model
        self._location: ModelLocation | None = None
        if identity is None:
            self._location = locate_encoder(self.config.model)  # fails fast on a missing model
            identity = self._location.identity
        self.identity = f"{identity}|len={self.config.max_seq_length or 'default'}"
        self.cache = VectorCache.in_dir(self.config.cache.root()) if self.config.cache.enabled else None
        self.stats = {"hits": 0, "misses": 0, "encoded_texts": 0, "model_calls": 0, "seconds_encoding": 0.0}

    # -- model -------------------------------------------------------------------------------
    @property
    def model(self):
        if self._model is None:
            started = time.perf_counter()
            self._model = load_sentence_transformer(self._location, self.config.device)
            log.info("loaded %s in %.1f s", self.config.model, time.perf_counter() - started)
        if self.config.max_seq_length:
            self._model.max_seq_length = self.config.max_seq_length
        return self._model

    @property
    def dim(self) -> int:
        cached = self.cache.dim(self.identity) if self.cache else None
        if cached:
            return cached
        model = self.model
        getter = getattr(model, "get_embedding_dimension", None) or model.get_sentence_embedding_dimension
        return int(getter())

    # -- encoding ----------------------------------------------------------------------------
    def encode(self, texts: Sequence[str], *, batch_size: int | None = None, show_progress: bool | None = None,
               no_cache: bool = False) -> np.ndarray:
        """(len(texts), dim) float32, unit-norm rows (zero rows for empty texts with empty_text='zero')."""
        if isinstance(texts, str):
            raise TypeError("encode() takes a list of texts, not a single string")
        texts = list(texts)
        for i, text in enumerate(texts):
            if not isinstance(text, str):
                raise TypeError(f"text {i} is {type(text).__name__}, not str")
        empty = [i for i, t in enumerate(texts) if not t.strip()]
        if empty and self.config.empty_text == "error":
            raise EmptyTextError(
                f"{len(empty)} empty text(s), first at index {empty[0]}; build item texts with "
                "lucidrec.lm.text.build_item_texts (it substitutes 'item <id>'), or set empty_text='zero'"
            )
        skip = set(empty) if self.config.empty_text == "zero" else set()
        unique: dict[str, bytes] = {}
        for i, text in enumerate(texts):
            if i not in skip and text not in unique:
                unique[text] = text_key(text)

        use_cache = self.cache is not None and not no_cache
        found = self.cache.get_many(self.identity, list(unique.values())) if use_cache else {}
        missing = [t for t, k in unique.items() if k not in found]
        self.stats["hits"] += len(unique) - len(missing)
        self.stats["misses"] += len(missing)
        if missing:
            found.update(self._encode_missing(missing, unique, batch_size or self.config.batch_size,
                                              self.config.show_progress if show_progress is None else show_progress,
                                              use_cache))
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        dim = len(next(iter(found.values()))) if found else self.dim
        out = np.zeros((len(texts), dim), dtype=np.float32)
        for i, text in enumerate(texts):
            if i not in skip:
                out[i] = found[unique[text]]
        return out

    def _encode_missing(self, missing: list[str], keys: dict[str, bytes], batch_size: int, show_progress: bool,
                        use_cache: bool) -> dict[bytes, np.ndarray]:
        from tqdm.auto import tqdm

        model = self.model
        ordered = sorted(missing, key=len, reverse=True)
        chunk = batch_size * CHUNK_BATCHES
        out: dict[bytes, np.ndarray] = {}
        started = time.perf_counter()
        with tqdm(total=len(ordered), desc="encoding", unit="text", disable=not show_progress, file=sys.stderr) as bar:
            for start in range(0, len(ordered), chunk):
                part = ordered[start:start + chunk]
                vectors = model.encode(part, batch_size=batch_size, convert_to_numpy=True, normalize_embeddings=True,
                                       show_progress_bar=False)
                vectors = np.asarray(vectors, dtype=np.float32)
                self.stats["model_calls"] += 1
                part_keys = [keys[t] for t in part]
                if use_cache:
                    self.cache.put_many(self.identity, part_keys, vectors)
                out.update(zip(part_keys, vectors))
                bar.update(len(part))
        self.stats["encoded_texts"] += len(missing)
        self.stats["seconds_encoding"] += time.perf_counter() - started
        return out

    def __repr__(self) -> str:
        return f"TextEncoder({self.identity!r}, cache={self.cache.path if self.cache else None})"
