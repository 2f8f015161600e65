"""Token, call and cost accounting for chat models: printable, and serialisable with a run."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field, fields


@dataclass
class Usage:
    """Counters of one batch or of a model's whole life (``+=`` merges)."""

    requests: int = 0
    cache_hits: int = 0
    model_calls: int = 0
    retries: int = 0
    failures: int = 0
    prompt_tokens: int = 0
    completion_tokens: int = 0
    seconds: float = 0.0
    price_per_1k_prompt: float = 0.0
    price_per_1k_completion: float = 0.0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False, compare=False)

    def add(self, **counts) -> None:
        with self._lock:
            for name, value in counts.items():
                setattr(self, name, getattr(self, name) + value)

    def __iadd__(self, other: "Usage") -> "Usage":
        self.add(**{k: v for k, v in other.to_dict().items() if k in _COUNTERS})
        return self

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens

    @property
    def cost(self) -> float:
        return (self.prompt_tokens * self.price_per_1k_prompt + self.completion_tokens * self.price_per_1k_completion) / 1000

    def to_dict(self) -> dict:
        data = {f.name: getattr(self, f.name) for f in fields(self) if not f.name.startswith("_")}
        data.update(total_tokens=self.total_tokens, cost=round(self.cost, 6))
        return data

    def summary(self, label: str = "LLM") -> str:
        parts = [
            f"{label}: {self.requests} requests",
            f"{self.cache_hits} cached",
            f"{self.model_calls} model calls",
            f"{self.failures} failed",
            f"{self.prompt_tokens} prompt + {self.completion_tokens} completion tokens",
            f"{self.seconds:.1f} s",
        ]
        if self.retries:
            parts.insert(3, f"{self.retries} retries")
        if self.price_per_1k_prompt or self.price_per_1k_completion:
            parts.append(f"cost {self.cost:.4f}")
        return ", ".join(parts)


_COUNTERS = ("requests", "cache_hits", "model_calls", "retries", "failures", "prompt_tokens", "completion_tokens", "seconds")
