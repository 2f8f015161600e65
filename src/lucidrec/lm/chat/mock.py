"""A deterministic backend for unit tests: echo, a fixed answer, or a scripted responder."""

from __future__ import annotations

import hashlib
import threading
from typing import Callable

import numpy as np

from lucidrec.lm.chat.base import ChatModel, ChoiceScore
from lucidrec.lm.chat.messages import ChatRequest, ChatResponse
from lucidrec.lm.config import MockChatConfig, chat_config


class MockChatModel(ChatModel):
    """``responder(request) -> str`` (optional) overrides the configured mode; it may raise to
    simulate a failing request. ``calls`` counts requests that reached the "model"."""

    backend = "mock"

    def __init__(self, config: MockChatConfig | None = None, response_cache=None,
                 responder: Callable[[ChatRequest], str] | None = None, **overrides):
        super().__init__(chat_config(config or "mock", **overrides), response_cache)
        self.responder = responder
        self.calls = 0
        self.seen: list[ChatRequest] = []
        self._lock = threading.Lock()

    @property
    def model_id(self) -> str:
        return self.config.model

    def _answer(self, request: ChatRequest) -> str:
        if self.responder is not None:
            return self.responder(request)
        if self.config.mode == "fixed":
            return self.config.answer
        return request.last_user_message()

    def _generate(self, requests, progress):
        out = []
        for request in requests:
            with self._lock:
                self.calls += 1
                self.seen.append(request)
            try:
                answer = self._answer(request)
                text = answer[: request.sampling.max_tokens * 8]  # about 8 characters per token
                finish = "length" if len(text) < len(answer) else "stop"
                out.append(ChatResponse(text=text, model=self.model_id, finish_reason=finish,
                                        prompt_tokens=sum(len(m["content"].split()) for m in request.messages),
                                        completion_tokens=len(text.split())))
            except Exception as exc:  # a scripted failure
                out.append(ChatResponse.failure(exc))
            progress(1)
        return out

    def _score(self, requests, choices, method, progress):
        # Probabilities from a hash of the prompt: deterministic, different per prompt, sum to 1.
        out = []
        for request in requests:
            with self._lock:
                self.calls += 1
            seed = int.from_bytes(hashlib.sha1(request.last_user_message().encode()).digest()[:4], "little")
            weights = np.random.default_rng(seed).random(len(choices)) + 1e-3
            out.append(ChoiceScore(weights / weights.sum(), 1.0))
            progress(1)
        return out
