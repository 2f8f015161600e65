"""Structured answers: extract JSON from model text, validate it, re-ask a bounded number of times.

:func:`complete_structured` asks every prompt once, validates each answer against a pydantic
schema, and re-asks only the invalid ones (the bad answer and the validation error are appended to
the conversation, from the ``json_reask`` prompt template), at most ``max_reasks`` times. Items
that still fail are listed in :attr:`StructuredResult.failures` with their last answer and error,
never dropped silently. Only valid answers are cached: the final valid answer is stored under the
ORIGINAL request (kind ``structured:<schema>``), so a re-run makes no model calls even for items
that needed re-asks; invalid answers are never written.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import asdict, dataclass, field
from typing import Any, Literal, Sequence

from pydantic import BaseModel, TypeAdapter, ValidationError

from lucidrec.lm.chat.messages import ChatRequest
from lucidrec.lm.errors import StructuredOutputError
from lucidrec.lm.prompts import load_prompt

_FENCE = re.compile(r"```(?:json|JSON)?\s*(.*?)```", re.DOTALL)


def extract_json(text: str, expect: Literal["object", "array", "any"] = "any") -> Any:
    """The JSON value in a model answer: the whole text, a fenced block, or the span from the first
    opening bracket to the last closing one (then, failing that, the first bracket that decodes)."""
    if not isinstance(text, str) or not text.strip():
        raise StructuredOutputError("the answer is empty")
    candidates = [text.strip(), *(m.strip() for m in _FENCE.findall(text))]
    pairs = {"object": ["{}"], "array": ["[]"], "any": ["{}", "[]"]}[expect]
    for opening, closing in pairs:
        start, end = text.find(opening), text.rfind(closing)
        if start != -1 and end > start:
            candidates.append(text[start:end + 1])
    wanted = {"object": dict, "array": list, "any": (dict, list)}[expect]
    for candidate in candidates:
        try:
            value = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(value, wanted):
            return value
    decoder = json.JSONDecoder()
    for opening, _ in pairs:
        for match in re.finditer(re.escape(opening), text):
            try:
                value, _ = decoder.raw_decode(text, match.start())
            except json.JSONDecodeError:
                continue
            if isinstance(value, wanted):
                return value
    kind = {"object": "JSON object", "array": "JSON array", "any": "JSON value"}[expect]
    raise StructuredOutputError(f"no {kind} found in the answer (it starts: {text.strip()[:80]!r})")


def _adapter(schema) -> TypeAdapter:
    return TypeAdapter(schema)


def schema_text(schema) -> str:
    return json.dumps(_adapter(schema).json_schema(), separators=(",", ":"))


def schema_id(schema) -> str:
    name = getattr(schema, "__name__", None) or str(schema)
    return f"{name}:{hashlib.sha1(schema_text(schema).encode()).hexdigest()[:10]}"


def parse_answer(text: str, schema) -> Any:
    """Extract and validate; raises :class:`StructuredOutputError` with a message fit for a re-ask."""
    is_model = isinstance(schema, type) and issubclass(schema, BaseModel)
    value = extract_json(text, "object" if is_model else "any")
    try:
        return _adapter(schema).validate_python(value)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc'])) or '(root)'}: {e['msg']}" for e in exc.errors()[:6])
        raise StructuredOutputError(f"the JSON does not match the schema: {problems}") from None


@dataclass
class StructuredFailure:
    index: int
    error: str
    answer: str
    attempts: int
    key: str | None = None


@dataclass
class StructuredResult:
    """Validated values aligned with the prompts (``None`` where the item failed)."""

    values: list[Any]
    answers: list[str]
    attempts: list[int]
    failures: list[StructuredFailure] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.failures

    @property
    def n_failed(self) -> int:
        return len(self.failures)

    def raise_for_failures(self) -> None:
        if self.failures:
            first = self.failures[0]
            raise StructuredOutputError(f"{self.n_failed} of {len(self.values)} answers failed; first (item "
                                        f"{first.index}, {first.attempts} attempts): {first.error}")

    def to_dict(self) -> dict:
        return {"n": len(self.values), "n_failed": self.n_failed, "reasks": sum(max(0, a - 1) for a in self.attempts),
                "failures": [asdict(f) for f in self.failures]}


def complete_structured(chat, prompts: Sequence, schema, *, max_reasks: int = 2, no_cache: bool = False,
                        keys: Sequence[str | None] | None = None, template=None, show_progress: bool | None = None,
                        reask_template: str = "json_reask", **sampling) -> StructuredResult:
    """Ask, validate against ``schema`` (a pydantic model or any type pydantic can validate), re-ask."""
    if max_reasks < 0:
        raise ValueError("max_reasks must be >= 0")
    keys = list(keys) if keys is not None else [None] * len(prompts)
    requests = [chat.request(p, template=template, key=k, **sampling) for p, k in zip(prompts, keys)]
    kind = f"structured:{schema_id(schema)}"
    final_keys = [chat.cache_key(r, kind=kind) for r in requests]
    n = len(requests)
    values: list[Any] = [None] * n
    answers, attempts = [""] * n, [0] * n
    failures: list[StructuredFailure] = []
    use_cache = chat.cache is not None and not no_cache
    stored = chat.cache.get_many(final_keys) if use_cache else {}
    pending = []
    for i, k in enumerate(final_keys):
        try:
            if k not in stored:
                raise KeyError(k)
            values[i], answers[i] = parse_answer(stored[k]["text"], schema), stored[k]["text"]
        except (KeyError, StructuredOutputError):
            pending.append(i)

    def valid(text: str) -> bool:
        try:
            parse_answer(text, schema)
            return True
        except StructuredOutputError:
            return False

    reask = load_prompt(reask_template)
    conversations = {i: list(requests[i].messages) for i in pending}
    last_error: dict[int, tuple[str, str]] = {}
    fresh: list[int] = []
    for _ in range(max_reasks + 1):
        if not pending:
            break
        batch = [ChatRequest(conversations[i], requests[i].sampling, requests[i].template, requests[i].key,
                             requests[i].metadata) for i in pending]
        responses = chat.complete_many(batch, no_cache=no_cache, errors="return", accept=valid, show_progress=show_progress)
        still = []
        for i, response in zip(pending, responses):
            attempts[i] += 1
            if not response.ok:  # transport / backend failure: re-asking the same thing will not help
                failures.append(StructuredFailure(i, f"{response.error_type}: {response.error}", "", attempts[i], keys[i]))
                continue
            try:
                values[i], answers[i] = parse_answer(response.text, schema), response.text
                fresh.append(i)
            except StructuredOutputError as exc:
                last_error[i] = (str(exc), response.text)
                follow_up = reask.render(error=str(exc), schema=schema_text(schema)).messages
                conversations[i] = conversations[i] + [{"role": "assistant", "content": response.text}] + follow_up
                still.append(i)
        pending = still
    for i in pending:
        failures.append(StructuredFailure(i, last_error[i][0], last_error[i][1], attempts[i], keys[i]))
    if use_cache and fresh:
        chat.cache.put_many([chat._entry(final_keys[i], kind, requests[i], {"text": answers[i]}) for i in fresh])
    failures.sort(key=lambda f: f.index)
    return StructuredResult(values, answers, attempts, failures)
