"""Requests and responses exchanged with every chat backend."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from lucidrec.lm.config import SamplingParams
from lucidrec.lm.prompts import PromptRef, RenderedPrompt

ROLES = ("system", "user", "assistant")


@dataclass
class ChatRequest:
    """One conversation to complete.

    ``key`` is an explicit record key (e.g. a user id): the recorded backend looks answers up by it
    and it is part of the cache key. ``metadata`` is free-form and never part of any key.
    """

    messages: list[dict]
    sampling: SamplingParams = field(default_factory=SamplingParams)
    template: PromptRef | None = None
    key: str | None = None
    metadata: dict = field(default_factory=dict)

    def cache_parts(self, include_sampling: bool = True) -> dict:
        parts: dict[str, Any] = {
            "messages": self.messages,
            "template": [self.template.name, self.template.version] if self.template else None,
            "key": self.key,
        }
        if include_sampling:
            parts["sampling"] = self.sampling.model_dump()
        return parts

    def last_user_message(self) -> str:
        for message in reversed(self.messages):
            if message["role"] == "user":
                return message["content"]
        return ""


@dataclass
class TokenLogprob:
    token: str
    logprob: float
    top: list[tuple[str, float]] = field(default_factory=list)


@dataclass
class ChatResponse:
    """An answer, or a failure (``error`` set, ``text`` empty). Failures are never cached."""

    text: str = ""
    finish_reason: str = "stop"
    prompt_tokens: int = 0
    completion_tokens: int = 0
    cached: bool = False
    model: str = ""
    error: str | None = None
    error_type: str | None = None
    retries: int = 0
    logprobs: list[TokenLogprob] | None = None
    exception: BaseException | None = field(default=None, repr=False, compare=False)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def cut_at_max_tokens(self) -> bool:
        """The answer stopped at its length limit (``sampling.max_tokens``), not at its end."""
        return self.finish_reason == "length"

    @classmethod
    def failure(cls, exc: BaseException, retries: int = 0) -> "ChatResponse":
        return cls(error=str(exc), error_type=type(exc).__name__, exception=exc, finish_reason="error", retries=retries)

    def to_payload(self) -> dict:
        payload: dict[str, Any] = {
            "text": self.text, "finish_reason": self.finish_reason, "model": self.model,
            "prompt_tokens": self.prompt_tokens, "completion_tokens": self.completion_tokens,
        }
        if self.logprobs is not None:
            payload["logprobs"] = [[t.token, t.logprob, [list(p) for p in t.top]] for t in self.logprobs]
        return payload

    @classmethod
    def from_payload(cls, payload: dict) -> "ChatResponse":
        logprobs = payload.get("logprobs")
        return cls(
            text=payload["text"], finish_reason=payload.get("finish_reason", "stop"), model=payload.get("model", ""),
            prompt_tokens=payload.get("prompt_tokens", 0), completion_tokens=payload.get("completion_tokens", 0),
            cached=True,
            logprobs=None if logprobs is None else [TokenLogprob(t, lp, [tuple(p) for p in top]) for t, lp, top in logprobs],
        )


def as_messages(prompt) -> tuple[list[dict], PromptRef | None]:
    """Accept a plain string (one user message), a message list, or a rendered template."""
    if isinstance(prompt, RenderedPrompt):
        return _checked(prompt.messages), prompt.ref
    if isinstance(prompt, str):
        if not prompt.strip():
            raise ValueError("empty prompt")
        return [{"role": "user", "content": prompt}], None
    if isinstance(prompt, (list, tuple)):
        return _checked(list(prompt)), None
    raise TypeError(f"a prompt is a string, a list of messages or a RenderedPrompt, not {type(prompt).__name__}")


def _checked(messages: list) -> list[dict]:
    if not messages:
        raise ValueError("empty message list")
    out = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or message.get("role") not in ROLES or not isinstance(message.get("content"), str):
            raise ValueError(f"message {i} must be {{'role': one of {ROLES}, 'content': str}}, got {message!r:.120}")
        out.append({"role": message["role"], "content": message["content"]})
    return out
