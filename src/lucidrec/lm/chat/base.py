"""ChatModel: the one interface every backend implements, with caching and accounting built in.

Backends implement ``_generate(requests, progress)`` (and optionally ``_score``); this class does
the rest: request building, cache lookups and writes, de-duplication inside a batch, usage
counting, progress and error policy. Answers are cached as they arrive, one micro-batch of
:meth:`ChatModel.write_every` requests at a time, so a killed batch loses at most one micro-batch.
``complete_many(..., errors="raise")`` finishes the whole batch first (so successful answers are
cached) and then raises the first failure; ``errors="return"`` hands back failures as responses
with ``error`` set.
"""

from __future__ import annotations

import logging
import sys
import time
from typing import Callable, ClassVar, Literal, Sequence

import numpy as np

from lucidrec.lm.accounting import Usage
from lucidrec.lm.cache import CacheEntry, ResponseCache, cache_key
from lucidrec.lm.chat.messages import ChatRequest, ChatResponse, as_messages
from lucidrec.lm.config import ChatConfigBase, SamplingParams
from lucidrec.lm.errors import LLMRequestError
from lucidrec.lm.prompts import PromptRef

log = logging.getLogger(__name__)
Progress = Callable[[int], None]


class ChoiceScore:
    """Probabilities over choices for one prompt (renormalised) and the raw mass they covered."""

    __slots__ = ("probs", "coverage", "error", "prompt_tokens")

    def __init__(self, probs=None, coverage: float = 0.0, error: BaseException | None = None, prompt_tokens: int = 0):
        self.probs, self.coverage, self.error, self.prompt_tokens = probs, coverage, error, prompt_tokens


class ChatModel:
    backend: ClassVar[str] = "base"
    cacheable: ClassVar[bool] = True

    def __init__(self, config: ChatConfigBase, response_cache: ResponseCache | None = None):
        self.config = config
        cache = response_cache
        if cache is None and config.cache.enabled and self.cacheable:
            cache = ResponseCache.in_dir(config.cache.root())
        self.cache = cache if self.cacheable and config.cache.enabled else None
        self.usage = self._new_usage()
        self.last_batch: Usage | None = None
        #: the first failure of the last batch (None when every request succeeded): what to report
        self.last_error: BaseException | None = None

    # -- to implement -------------------------------------------------------------------------
    @property
    def model_id(self) -> str:
        """The model's identity in cache keys (name plus a fingerprint where one exists)."""
        raise NotImplementedError

    def _generate(self, requests: list[ChatRequest], progress: Progress) -> list[ChatResponse]:
        raise NotImplementedError

    def _score(self, requests: list[ChatRequest], choices: list[str], method: str,
               progress: Progress) -> list[ChoiceScore]:
        raise NotImplementedError(f"the {self.backend} backend cannot score choices")

    def resolve_score_method(self, choices: list[str], method: str) -> str:
        return method

    @property
    def write_every(self) -> int:
        """Requests per backend call, and so between two cache writes: the most a killed batch loses.
        Backends that gain from larger calls (batched generation, a pool of HTTP requests) raise it."""
        return 1

    @property
    def endpoint(self) -> str:
        """Where the answers come from, for error messages: the backend and the model."""
        return f"{self.backend} model {self.model_id}"

    def _micro_batches(self, n: int, use_cache: bool):
        """Slices of ``n`` pending requests; one slice when nothing is cached (nothing to lose)."""
        step = self.write_every if use_cache else max(n, 1)
        for start in range(0, n, step):
            yield slice(start, start + step)

    # -- requests -----------------------------------------------------------------------------
    def request(self, prompt, *, template: PromptRef | None = None, key: str | None = None,
                metadata: dict | None = None, **sampling) -> ChatRequest:
        if isinstance(prompt, ChatRequest):
            if not sampling:
                return prompt
            merged = SamplingParams.model_validate({**prompt.sampling.model_dump(), **sampling})
            return ChatRequest(prompt.messages, merged, prompt.template, prompt.key, prompt.metadata)
        messages, rendered_ref = as_messages(prompt)
        params = SamplingParams.model_validate({**self.config.sampling.model_dump(), **sampling}) if sampling \
            else self.config.sampling
        return ChatRequest(messages, params, template or rendered_ref, None if key is None else str(key), metadata or {})

    def cache_key(self, request: ChatRequest, kind: str = "chat", extra: dict | None = None) -> str:
        parts = {"kind": kind, "backend": self.backend, "model": self.model_id,
                 **request.cache_parts(include_sampling=kind != "score")}
        if extra:
            parts["extra"] = extra
        return cache_key(parts)

    def _entry(self, key: str, kind: str, request: ChatRequest, payload: dict) -> CacheEntry:
        ref = request.template
        return CacheEntry(key, kind, self.backend, self.model_id, request.cache_parts(kind != "score"), payload,
                          ref.name if ref else None, ref.version if ref else None)

    # -- completion ---------------------------------------------------------------------------
    def complete(self, prompt, *, no_cache: bool = False, template: PromptRef | None = None, key: str | None = None,
                 metadata: dict | None = None, **sampling) -> ChatResponse:
        request = self.request(prompt, template=template, key=key, metadata=metadata, **sampling)
        return self.complete_many([request], no_cache=no_cache, show_progress=False)[0]

    def complete_many(self, prompts: Sequence, *, no_cache: bool = False, errors: Literal["raise", "return"] = "raise",
                      accept: Callable[[str], bool] | None = None, show_progress: bool | None = None,
                      template: PromptRef | None = None, keys: Sequence[str | None] | None = None,
                      **sampling) -> list[ChatResponse]:
        """Answers aligned with ``prompts``; only successful answers passing ``accept`` are cached.

        ``keys`` gives per-prompt explicit record keys (see :class:`ChatRequest`).
        """
        if errors not in ("raise", "return"):
            raise ValueError("errors must be 'raise' or 'return'")
        keys = list(keys) if keys is not None else [None] * len(prompts)
        if len(keys) != len(prompts):
            raise ValueError(f"{len(keys)} keys for {len(prompts)} prompts")
        requests = [self.request(p, template=template, key=k, **sampling) for p, k in zip(prompts, keys)]
        batch, started = self._new_usage(), time.perf_counter()
        cache_keys = [self.cache_key(r) for r in requests]
        out: list[ChatResponse | None] = [None] * len(requests)
        use_cache = self.cache is not None and not no_cache
        if use_cache:
            stored = self.cache.get_many(cache_keys)
            for i, k in enumerate(cache_keys):
                if k in stored:
                    response = ChatResponse.from_payload(stored[k])
                    if accept is None or accept(response.text):
                        out[i] = response
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(cache_keys):
            if out[i] is None:
                todo.setdefault(k, []).append(i)  # identical requests in one batch: one model call
        pending = list(todo.items())
        unique = [requests[indices[0]] for _, indices in pending]
        generated: list[ChatResponse] = []
        if unique:
            with self._progress(len(unique), show_progress) as bar:
                for part in self._micro_batches(len(unique), use_cache):
                    answers = self._generate(unique[part], bar.update)
                    if len(answers) != len(unique[part]):
                        raise RuntimeError(f"{self.backend} backend returned {len(answers)} answers for "
                                           f"{len(unique[part])} requests")
                    entries = []
                    for (k, indices), request, response in zip(pending[part], unique[part], answers):
                        for i in indices:
                            out[i] = response
                        if response.ok and use_cache and (accept is None or accept(response.text)):
                            entries.append(self._entry(k, "chat", request, response.to_payload()))
                    if entries:
                        self.cache.put_many(entries)
                    generated += answers
        done = [r for r in out if r is not None]
        unsent = sum(not getattr(r.exception, "sent", True) for r in generated)
        batch.add(requests=len(requests), cache_hits=sum(r.cached for r in done), model_calls=len(unique) - unsent,
                  failures=sum(not r.ok for r in done), retries=sum(r.retries for r in generated),
                  prompt_tokens=sum(r.prompt_tokens for r in generated),
                  completion_tokens=sum(r.completion_tokens for r in generated),
                  seconds=time.perf_counter() - started)
        self._finish_batch(batch, show_progress, len(requests))
        failed = [r for r in done if not r.ok]
        self.last_error = (failed[0].exception or LLMRequestError(failed[0].error)) if failed else None
        if failed and errors == "raise":
            first = failed[0]
            if len(failed) > 1:
                log.error("%d of %d requests failed; raising the first", len(failed), len(requests))
            raise first.exception or LLMRequestError(first.error)
        return done

    def complete_json(self, prompt, schema, *, max_reasks: int = 2, **kwargs):
        """One validated answer (an instance of ``schema``); raises StructuredOutputError if it never validates."""
        result = self.complete_structured([prompt], schema, max_reasks=max_reasks, show_progress=False, **kwargs)
        result.raise_for_failures()
        return result.values[0]

    def complete_structured(self, prompts: Sequence, schema, *, max_reasks: int = 2, **kwargs):
        """JSON answers validated against a pydantic ``schema``; see :func:`lucidrec.lm.structured.complete_structured`."""
        from lucidrec.lm.structured import complete_structured

        return complete_structured(self, prompts, schema, max_reasks=max_reasks, **kwargs)

    # -- choice scoring -----------------------------------------------------------------------
    def score_choices(self, prompts: Sequence, choices: Sequence, *, method: str = "auto", no_cache: bool = False,
                      errors: Literal["raise", "return"] = "raise", return_coverage: bool = False,
                      show_progress: bool | None = None, template: PromptRef | None = None):
        """(n_prompts, n_choices) probabilities of each choice being the answer; rows sum to 1.

        The probabilities are renormalised over ``choices``; with ``return_coverage=True`` the
        probability mass the choices had before renormalisation is returned too (low coverage
        means the model wanted to answer something else). How multi-token choices are handled is
        backend-specific (see the transformers and openai backends). Failed rows are NaN with
        ``errors="return"``.
        """
        labels = [str(c) for c in choices]
        if len(labels) < 2 or len(set(labels)) != len(labels):
            raise ValueError(f"need at least two distinct choices, got {labels}")
        method = self.resolve_score_method(labels, method)
        requests = [self.request(p, template=template) for p in prompts]
        extra = {"choices": labels, "method": method}
        keys = [self.cache_key(r, kind="score", extra=extra) for r in requests]
        probs = np.full((len(requests), len(labels)), np.nan, dtype=np.float64)
        coverage = np.zeros(len(requests))
        batch, started = self._new_usage(), time.perf_counter()
        use_cache = self.cache is not None and not no_cache
        stored = self.cache.get_many(keys) if use_cache else {}
        for i, k in enumerate(keys):
            if k in stored:
                probs[i], coverage[i] = stored[k]["probs"], stored[k]["coverage"]
        todo = [i for i, k in enumerate(keys) if k not in stored]
        first_error, unsent = None, 0
        if todo:
            scores: list[ChoiceScore] = []
            with self._progress(len(todo), show_progress, unit="prompt") as bar:
                for part in self._micro_batches(len(todo), use_cache):
                    rows = todo[part]
                    answers = self._score([requests[i] for i in rows], labels, method, bar.update)
                    entries = []
                    for i, score in zip(rows, answers):
                        if score.error is not None:
                            first_error = first_error or score.error
                            continue
                        probs[i], coverage[i] = score.probs, score.coverage
                        if use_cache:
                            entries.append(self._entry(keys[i], "score", requests[i], {
                                "probs": list(map(float, score.probs)), "coverage": float(score.coverage)}))
                    if entries:
                        self.cache.put_many(entries)
                    scores += answers
            unsent = sum(not getattr(s.error, "sent", True) for s in scores)
            batch.add(prompt_tokens=sum(s.prompt_tokens for s in scores), failures=sum(s.error is not None for s in scores))
        batch.add(requests=len(requests), cache_hits=len(requests) - len(todo), model_calls=len(todo) - unsent,
                  seconds=time.perf_counter() - started)
        self._finish_batch(batch, show_progress, len(requests))
        self.last_error = first_error
        if first_error is not None and errors == "raise":
            raise first_error
        return (probs, coverage) if return_coverage else probs

    def score_expected(self, prompts: Sequence, choices: Sequence | dict, **kwargs) -> np.ndarray:
        """Probability-weighted value per prompt, e.g. ``choices=range(1, 11)`` for a 1-10 scale."""
        from lucidrec.lm.scoring import choice_values, expected_value

        labels, values = choice_values(choices)
        return expected_value(self.score_choices(prompts, labels, **kwargs), values)

    # -- bookkeeping --------------------------------------------------------------------------
    def _new_usage(self) -> Usage:
        return Usage(price_per_1k_prompt=self.config.price_per_1k_prompt,
                     price_per_1k_completion=self.config.price_per_1k_completion)

    def _progress(self, total: int, show: bool | None, unit: str = "request"):
        from tqdm.auto import tqdm

        show = self.config.show_progress if show is None else show
        return tqdm(total=total, desc=f"{self.backend}:{self.model_id[:40]}", unit=unit, file=sys.stderr,
                    disable=not show or total < 2)

    def _finish_batch(self, batch: Usage, show_progress: bool | None, size: int) -> None:
        self.usage += batch
        self.last_batch = batch
        show = self.config.show_progress if show_progress is None else show_progress
        if show and size > 1:
            print(batch.summary(f"{self.backend}:{self.model_id}"), file=sys.stderr)

    def stats(self) -> dict:
        """Lifetime usage of this model object plus this session's cache hits/misses/writes."""
        data = {"backend": self.backend, "model": self.model_id, "usage": self.usage.to_dict()}
        if self.cache is not None:
            data["cache"] = {"path": str(self.cache.path), **self.cache.session_stats()}
        return data

    def close(self) -> None:
        if self.cache is not None:
            self.cache.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.model_id!r})"
