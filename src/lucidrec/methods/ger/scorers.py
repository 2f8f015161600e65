"""Attribute scorers: texts in, one raw score per (text, attribute) out. Interchangeable by config.

- :class:`EncoderScorer` ("encoder"): cos(E(text), E(high anchor)) - cos(E(text), E(low anchor)) with
  a sentence encoder (MiniLM by default); range [-2, 2]; cached vectors.
- :class:`SlotScorer` ("llm", method ``slots``): a local transformers chat model reads all m
  attributes of a text in ONE forward pass (see :mod:`.slots`); the score is the expected value
  sum_v p(v) * v over the digit tokens 1..9. Cached per text in the chat model's response cache
  (kind ``ger_slots``), written batch by batch, so a killed run resumes and a re-run is free.
- :class:`LogprobScorer` ("llm", method ``logprobs``): one prompt per (text, attribute) through
  ``ChatModel.score_choices`` (first-token logprobs: works with OpenAI-compatible endpoints that
  return them, and with transformers); expected value over 1..9.
- :class:`JsonScorer` ("llm", method ``json``): one JSON answer per text with every attribute
  (1..10), validated against a schema naming the attributes, re-asked when invalid, clipped to the
  range; texts that never validate are NaN and listed in ``stats["failures"]``.

Every scorer returns a :class:`ScoreResult`; NaN marks a text without a usable score.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, create_model, model_validator

from lucidrec.config import ConfigError
from lucidrec.embeddings.ger.attributes import AttributeSet

DIGITS = tuple(range(1, 10))
MARKER = "\u0000GER-TEXT\u0000"


@dataclass
class ScoreResult:
    raw: np.ndarray  # (n_texts, m) float64; NaN = no score
    low: float
    high: float
    scorer: str
    stats: dict = field(default_factory=dict)

    @property
    def valid(self) -> np.ndarray:
        return ~np.isnan(self.raw).any(axis=1)


def attribute_lines(attributes: AttributeSet, low: int = 1, high: int = 9) -> str:
    return "\n".join(f"- {a.name}: {a.description} ({low} = {a.low}; {high} = {a.high})" for a in attributes.attributes)


def _rate(stats: dict, scored: int, seconds: float) -> dict:
    stats.update(scored=scored, seconds=round(seconds, 3),
                 items_per_second=round(scored / seconds, 3) if scored and seconds > 0 else None)
    return stats


class EncoderScorer:
    name = "encoder"
    low, high = -2.0, 2.0

    def __init__(self, attributes: AttributeSet, encoder=None, *, model: str = "all-MiniLM-L6-v2",
                 cache_dir: str | Path | None = None, show_progress: bool = False):
        from lucidrec.lm.encoder import TextEncoder

        self.attributes = attributes
        self.encoder = encoder or TextEncoder(model, cache_dir=cache_dir, show_progress=show_progress)

    def score(self, texts: list[str]) -> ScoreResult:
        started = time.perf_counter()
        anchors = self.encoder.encode([a.low for a in self.attributes.attributes] +
                                      [a.high for a in self.attributes.attributes], show_progress=False)
        before = dict(self.encoder.stats)  # count the item texts only, not the anchors
        m = len(self.attributes)
        vectors = self.encoder.encode(list(texts)) if texts else np.zeros((0, anchors.shape[1]), np.float32)
        raw = (vectors @ anchors[m:].T - vectors @ anchors[:m].T).astype(np.float64)
        encoded = self.encoder.stats["encoded_texts"] - before["encoded_texts"]
        stats = {"texts": len(texts), "cache_hits": self.encoder.stats["hits"] - before["hits"], "encoded": encoded,
                 "failures": 0}
        return ScoreResult(raw, self.low, self.high, self.name, _rate(stats, encoded, time.perf_counter() - started))


class _ChatScorer:
    """Shared by the LLM scorers: a chat model, a prompt template and the text's variable name."""

    low, high = 1.0, 9.0

    def __init__(self, attributes: AttributeSet, chat, template: str, variable: str, *, batch_size: int = 16,
                 chunk: int = 256, show_progress: bool | None = None):
        from lucidrec.lm.prompts import load_prompt

        self.attributes, self.chat, self.variable = attributes, chat, variable
        self.template = load_prompt(template)
        self.batch_size, self.chunk, self.show_progress = batch_size, chunk, show_progress

    def _values(self, text: str, low: int, high: int, **more) -> dict:
        return {"domain": self.attributes.noun, "noun": self.attributes.noun,
                "attributes": attribute_lines(self.attributes, low, high), self.variable: text, **more}

    def _progress(self, total: int):
        from tqdm.auto import tqdm

        show = self.chat.config.show_progress if self.show_progress is None else self.show_progress
        return tqdm(total=total, desc=f"GER {self.name} scoring", unit="text", disable=not show or total < 2)


class SlotScorer(_ChatScorer):
    name = "llm:slots"
    VERSION = "1"  # bump when the slot layout changes (part of the cache key)

    def __init__(self, attributes, chat, template: str = "ger_item_slots", variable: str = "item_text", **kwargs):
        if getattr(chat, "backend", None) != "transformers":
            raise ConfigError(f"scorer.method 'slots' needs the transformers backend (logits at several positions of one "
                              f"sequence); the {getattr(chat, 'backend', '?')} backend can use 'logprobs' or 'json'")
        super().__init__(attributes, chat, template, variable, **kwargs)
        self._scorer = None
        #: set when the model's weights differ from the named model's (e.g. "lora:<digest>" after
        #: scorer tuning): part of the cache key, so tuned and zero-shot scores never mix.
        self.variant: str | None = None

    def key(self, text: str) -> str:
        from lucidrec.lm.cache import cache_key

        payload = {"kind": "ger_slots", "version": self.VERSION, "backend": self.chat.backend,
                   "model": self.chat.model_id, "template": [self.template.name, self.template.version],
                   "attributes": self.attributes.fingerprint(), "choices": list(DIGITS), "text": text}
        if self.variant:
            payload["variant"] = self.variant
        return cache_key(payload)

    def model_label(self) -> str:
        return f"{self.chat.model_id}+{self.variant}" if self.variant else self.chat.model_id

    def segment(self, text: str) -> list[int]:
        """The token ids that follow the shared prefix for ``text``: the text and the prompt's suffix."""
        self.prepare()
        return self._encode(text + self._suffix)

    def prepare(self):
        if self._scorer is None:
            from lucidrec.methods.ger.slots import SlotScorer as Slots

            model, tokenizer = self.chat.load()
            rendered = self.chat.render(self.template.render(**self._values(MARKER, 1, 9)).messages)
            if rendered.count(MARKER) != 1:
                raise ConfigError(f"prompt '{self.template.name}' must use ${self.variable} exactly once")
            prefix, self._suffix = rendered.split(MARKER)
            encode = lambda text: tokenizer.encode(text, add_special_tokens=False)  # noqa: E731
            choices = [encode(str(v)) for v in DIGITS]
            if any(len(c) != 1 for c in choices):
                raise ConfigError(f"{self.chat.model_id}: the digits 1-9 are not single tokens; use scorer.method 'json'")
            branches = [encode(f"{name}: ") for name in self.attributes.names]
            self._encode = encode
            self._scorer = Slots(model, encode(prefix), branches, [c[0] for c in choices], tokenizer.pad_token_id or 0)
        return self._scorer

    def score(self, texts: list[str]) -> ScoreResult:
        started = time.perf_counter()
        m = len(self.attributes)
        raw = np.full((len(texts), m), np.nan)
        coverage = np.full((len(texts), m), np.nan)
        keys = [self.key(t) for t in texts]
        cache = self.chat.cache
        stored = cache.get_many(keys) if cache is not None else {}
        todo: dict[str, list[int]] = {}
        for i, k in enumerate(keys):
            if k in stored:
                probs = np.asarray(stored[k]["probs"])
                raw[i], coverage[i] = probs @ np.asarray(DIGITS, float), stored[k]["coverage"]
            else:
                todo.setdefault(k, []).append(i)
        scored_started = time.perf_counter()
        if todo:
            from lucidrec.lm.cache import CacheEntry

            slots = self.prepare()
            segments = {k: self.segment(texts[ix[0]]) for k, ix in todo.items()}
            order = sorted(todo, key=lambda k: len(segments[k]))
            with self._progress(len(order)) as bar:
                for start in range(0, len(order), self.batch_size):
                    batch = order[start:start + self.batch_size]
                    result = slots.score([segments[k] for k in batch])
                    entries = []
                    for row, k in enumerate(batch):
                        for i in todo[k]:
                            raw[i] = result.probs[row] @ np.asarray(DIGITS, float)
                            coverage[i] = result.coverage[row]
                        entries.append(CacheEntry(k, "ger_slots", self.chat.backend, self.model_label(),
                                                  {"text": texts[todo[k][0]], "attributes": self.attributes.names},
                                                  {"probs": result.probs[row].tolist(),
                                                   "coverage": result.coverage[row].tolist()},
                                                  self.template.name, self.template.version))
                    if cache is not None:
                        cache.put_many(entries)
                    bar.update(len(batch))
        seconds = time.perf_counter() - scored_started
        stats = {"texts": len(texts), "cache_hits": len(texts) - sum(len(v) for v in todo.values()),
                 "model_calls": len(todo), "failures": 0, "mean_coverage": float(np.nanmean(coverage)) if len(texts) else None,
                 "total_seconds": round(time.perf_counter() - started, 3)}
        return ScoreResult(raw, self.low, self.high, self.name, _rate(stats, len(todo), seconds))


class LogprobScorer(_ChatScorer):
    name = "llm:logprobs"

    def __init__(self, attributes, chat, template: str = "ger_item_attribute", variable: str = "item_text", **kwargs):
        super().__init__(attributes, chat, template, variable, **kwargs)

    def score(self, texts: list[str]) -> ScoreResult:
        started = time.perf_counter()
        m = len(self.attributes)
        raw = np.full((len(texts), m), np.nan)
        hits = calls = 0
        first_error = None
        values = np.asarray(DIGITS, float)
        with self._progress(len(texts)) as bar:
            for start in range(0, len(texts), self.chunk):  # one layer call per chunk: cached as it goes
                part = texts[start:start + self.chunk]
                prompts = [self.template.render(**self._values(text, 1, 9), attribute=a.name,
                                                attribute_description=a.description, low=a.low, high=a.high)
                           for text in part for a in self.attributes.attributes]
                probs = self.chat.score_choices(prompts, [str(v) for v in DIGITS], errors="return", show_progress=False)
                raw[start:start + len(part)] = (probs @ values).reshape(len(part), m)
                batch = self.chat.last_batch
                hits += batch.cache_hits if batch else 0
                calls += batch.model_calls if batch else 0
                first_error = first_error or self.chat.last_error
                bar.update(len(part))
        failed = int(np.isnan(raw).any(axis=1).sum())
        stats = {"texts": len(texts), "prompts": len(texts) * m, "cache_hits": hits, "model_calls": calls,
                 "failures": failed}
        if first_error is not None:
            stats["first_error"] = str(first_error)
        return ScoreResult(raw, self.low, self.high, self.name, _rate(stats, len(texts), time.perf_counter() - started))


def _norm_key(key: str) -> str:
    return re.sub(r"\s+", " ", re.sub(r"[_\-]+", " ", str(key))).strip().lower()


class _ScoresBase(BaseModel):
    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    @model_validator(mode="before")
    @classmethod
    def _canonical_keys(cls, data):
        if isinstance(data, dict):
            lookup = {_norm_key(f.alias): f.alias for f in cls.model_fields.values()}
            return {lookup.get(_norm_key(k), k): v for k, v in data.items()}
        return data


def scores_schema(attributes: AttributeSet) -> type[BaseModel]:
    """A pydantic model with one required number per attribute (keys matched case-insensitively)."""
    fields = {f"a{i}": (float, Field(alias=name)) for i, name in enumerate(attributes.names)}
    return create_model(f"GERScores_{attributes.fingerprint()}", __base__=_ScoresBase, **fields)


def scores_vector(value: BaseModel, attributes: AttributeSet, low: float, high: float) -> tuple[np.ndarray, int]:
    """The validated answer as a vector in attribute order, clipped to [low, high]; and how many were clipped."""
    raw = np.array([getattr(value, f"a{i}") for i in range(len(attributes))], dtype=np.float64)
    clipped = np.clip(raw, low, high)
    return clipped, int((clipped != raw).sum())


def parse_scores(text: str, attributes: AttributeSet, low: float = 1, high: float = 10) -> np.ndarray:
    """Parse one JSON answer (raises StructuredOutputError naming missing attributes); values clipped."""
    from lucidrec.lm.structured import parse_answer

    return scores_vector(parse_answer(text, scores_schema(attributes)), attributes, low, high)[0]


class JsonScorer(_ChatScorer):
    name = "llm:json"
    low, high = 1.0, 10.0

    def __init__(self, attributes, chat, template: str = "ger_item_scores", variable: str = "item_text",
                 max_reasks: int = 2, **kwargs):
        super().__init__(attributes, chat, template, variable, **kwargs)
        self.max_reasks = max_reasks

    def score(self, texts: list[str]) -> ScoreResult:
        started = time.perf_counter()
        schema = scores_schema(self.attributes)
        raw = np.full((len(texts), len(self.attributes)), np.nan)
        failures, reasks, clipped = [], 0, 0
        with self._progress(len(texts)) as bar:
            for start in range(0, len(texts), self.chunk):
                part = texts[start:start + self.chunk]
                prompts = [self.template.render(**self._values(t, int(self.low), int(self.high))) for t in part]
                result = self.chat.complete_structured(prompts, schema, max_reasks=self.max_reasks, show_progress=False)
                for i, value in enumerate(result.values):
                    if value is not None:
                        raw[start + i], n = scores_vector(value, self.attributes, self.low, self.high)
                        clipped += n
                for failure in result.failures:
                    failures.append({"index": start + failure.index, "error": failure.error, "attempts": failure.attempts})
                reasks += sum(max(0, a - 1) for a in result.attempts)
                bar.update(len(part))
        stats = {"texts": len(texts), "failures": len(failures), "failure_examples": failures[:5], "reasks": reasks,
                 "clipped_values": clipped}
        if failures:
            stats["first_error"] = failures[0]["error"]
        return ScoreResult(raw, self.low, self.high, self.name, _rate(stats, len(texts), time.perf_counter() - started))


def require_scores(result: ScoreResult, scorer, *, stage: str, unit: str, allowed_share: float, fallback: str) -> None:
    """The LLM-stage rule (:func:`lucidrec.lm.failures.require_answers`) for a scorer's result: every text
    given to ``scorer`` must have a score, unless ``embedding.scorer.max_failed`` allows a share to fall back."""
    from lucidrec.lm.failures import require_answers

    chat = getattr(scorer, "chat", None)
    if chat is None:  # the sentence encoder scores every text or raises
        return
    require_answers(stage, int((~result.valid).sum()), len(result.raw), allowed_share=allowed_share,
                    endpoint=chat.endpoint, unit=unit, first_error=result.stats.get("first_error"),
                    setting="embedding.scorer.max_failed", fallback=fallback)


ITEM_TEMPLATES = {"slots": ("ger_item_slots", SlotScorer), "logprobs": ("ger_item_attribute", LogprobScorer),
                  "json": ("ger_item_scores", JsonScorer)}
USER_TEMPLATES = {"slots": ("ger_user_slots", SlotScorer), "logprobs": ("ger_user_attribute", LogprobScorer),
                  "json": ("ger_user_scores", JsonScorer)}


def create_chat(llm: dict | None, cache_dir: str | Path | None):
    from lucidrec.lm.chat import create_chat_model

    values = dict(llm or {"backend": "transformers"})
    if cache_dir is not None and "cache" not in values:
        values["cache"] = {"dir": str(cache_dir)}
    return create_chat_model(values)


def resolve_method(method: str, chat) -> str:
    if method == "auto":
        return "slots" if getattr(chat, "backend", None) == "transformers" else "logprobs"
    return method


def make_llm_scorer(attributes: AttributeSet, chat, method: str = "auto", *, users: bool = False, batch_size: int = 16,
                    max_reasks: int = 2, show_progress: bool | None = None):
    method = resolve_method(method, chat)
    template, cls = (USER_TEMPLATES if users else ITEM_TEMPLATES)[method]
    kwargs = {"max_reasks": max_reasks} if cls is JsonScorer else {}
    return cls(attributes, chat, template, "history" if users else "item_text", batch_size=batch_size,
               show_progress=show_progress, **kwargs)
