"""Any OpenAI-compatible chat-completions server (OpenAI, vLLM, Ollama, llama.cpp server, lucidrec's own).

The official ``openai`` client does the HTTP; its own retries are off (``max_retries=0``) and this
module retries instead, so behaviour is explicit and testable: 408/429/5xx, connection errors,
timeouts and malformed bodies are retried with exponential back-off plus jitter, honouring a
``Retry-After`` header; other 4xx fail at once. Requests run on a thread pool of ``concurrency``;
``requests_per_minute`` optionally spaces out request starts for hosted APIs. Once ``give_up_after``
requests in a row have failed with all their retries, the endpoint is taken as down and the model
object sends nothing more (each remaining request fails at once, naming the last error): a dead
endpoint costs a few retry cycles, not every request's back-off.

Choice scoring reads the top-k alternatives (``top_logprobs``, at most 20) of the first generated
token, so over HTTP only the first token of each choice can be seen: a choice matches a top-k
token whose text, stripped of spaces, equals the choice. Use single-token choices ("1".."9",
letters); a choice absent from the top-k gets probability 0 before renormalisation, and a prompt
where no choice appears at all is a failure (NaN row).
"""

from __future__ import annotations

import email.utils
import ipaddress
import logging
import math
import os
import random
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlparse

from lucidrec.lm.chat.base import ChatModel, ChoiceScore
from lucidrec.lm.chat.messages import ChatResponse, TokenLogprob
from lucidrec.lm.config import OpenAIChatConfig, chat_config
from lucidrec.lm.errors import LLMRequestError, LLMResponseError, LMError, MissingAPIKeyError
from lucidrec.lm.scoring import renormalise

log = logging.getLogger(__name__)
OPENAI_URL = "https://api.openai.com/v1"
MAX_TOP_LOGPROBS = 20
LOCAL_API_KEY = "not-needed"  # local servers (vLLM, llama.cpp, Ollama) accept any key


def is_loopback(url: str | None) -> bool:
    host = urlparse(url or "").hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def retry_after_seconds(headers) -> float | None:
    """Seconds to wait from ``retry-after-ms`` / ``Retry-After`` (seconds or an HTTP date)."""
    if headers is None:
        return None
    value = headers.get("retry-after-ms")
    if value:
        try:
            return float(value) / 1000
        except ValueError:
            pass
    value = headers.get("retry-after")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        parsed = email.utils.parsedate_to_datetime(value) if value else None
        return max(0.0, parsed.timestamp() - time.time()) if parsed else None


class OpenAIChatModel(ChatModel):
    backend = "openai"

    def __init__(self, config: OpenAIChatConfig | dict | None = None, response_cache=None, **overrides):
        super().__init__(chat_config(config or "openai", **overrides), response_cache)
        cfg = self.config
        self.base_url = cfg.resolved_base_url() or OPENAI_URL
        self.model_name = cfg.resolved_model()
        if not self.model_name:
            raise LMError("no model name for the openai backend: pass model=... or set LUCIDREC_LLM_MODEL")
        key = cfg.api_key.get_secret_value() if cfg.api_key else os.environ.get(cfg.api_key_env)
        if not key:
            if not is_loopback(self.base_url):
                raise MissingAPIKeyError(cfg.api_key_env, self.base_url)
            key = LOCAL_API_KEY
        import openai

        self.client = openai.OpenAI(api_key=key, base_url=self.base_url, max_retries=0, timeout=cfg.timeout)
        self._rate_lock = threading.Lock()
        self._next_slot = 0.0
        self._failed_in_a_row = 0
        self._down: LLMRequestError | None = None  # set once give_up_after requests in a row failed

    @property
    def model_id(self) -> str:
        return self.model_name

    @property
    def write_every(self) -> int:
        # Four requests per worker between cache writes: the pool waits for its slowest request only that often.
        return 4 * self.config.concurrency

    @property
    def endpoint(self) -> str:
        return f"model {self.model_name} at {self.base_url}"

    # -- HTTP with retries --------------------------------------------------------------------
    def _backoff(self, attempt: int) -> float:
        base = min(self.config.backoff_max, self.config.backoff_base * 2**attempt)
        return base * (0.5 + random.random() / 2)  # jitter spreads retries of concurrent workers

    def _throttle(self) -> None:
        """Space request starts ``60 / requests_per_minute`` seconds apart, across all worker threads."""
        if not self.config.requests_per_minute:
            return
        with self._rate_lock:
            now = time.monotonic()
            start = max(now, self._next_slot)
            self._next_slot = start + 60.0 / self.config.requests_per_minute
        if start > now:
            time.sleep(start - now)

    def _call(self, kwargs: dict):
        """(completion, retries) or raise LLMRequestError / LLMResponseError after the last attempt; at once
        when the endpoint was given up (``give_up_after`` requests in a row failed)."""
        if self._down is not None:
            raise LLMRequestError(f"not sent: {self.config.give_up_after} requests in a row to {self.base_url} "
                                  f"failed after all their retries (last: {self._down})", status=self._down.status,
                                  sent=False)
        try:
            result = self._call_with_retries(kwargs)
        except LLMRequestError as error:
            with self._rate_lock:
                self._failed_in_a_row += 1
                if self.config.give_up_after and self._failed_in_a_row >= self.config.give_up_after and not self._down:
                    self._down = error
                    log.error("%s: %d requests in a row failed; the remaining requests are not sent",
                              self.base_url, self._failed_in_a_row)
            raise
        with self._rate_lock:
            self._failed_in_a_row = 0
        return result

    def _call_with_retries(self, kwargs: dict):
        import openai

        attempt = 0
        while True:
            wait = None
            self._throttle()
            try:
                completion = self.client.chat.completions.create(**kwargs)
                if not hasattr(completion, "choices") or not completion.choices:
                    raise LLMResponseError(f"malformed response from {self.base_url}: no choices "
                                           f"({str(completion)[:120]!r})", retryable=True)
                message = completion.choices[0].message
                if message is None or message.content is None:
                    raise LLMResponseError(f"malformed response from {self.base_url}: no message content",
                                           retryable=True)
                return completion, attempt
            except openai.APIStatusError as exc:
                status = exc.status_code
                retryable = status in (408, 409, 429) or status >= 500
                hint = f" (check {self.config.api_key_env})" if status in (401, 403) else ""
                error = LLMRequestError(f"{self.base_url} answered HTTP {status}{hint}: {_message(exc)}",
                                        status=status, retryable=retryable)
                wait = retry_after_seconds(exc.response.headers) if exc.response is not None else None
            except openai.APITimeoutError:
                error = LLMRequestError(f"no answer from {self.base_url} within {self.config.timeout:g} s", retryable=True)
            except openai.APIConnectionError as exc:
                error = LLMRequestError(f"cannot reach {self.base_url}: {exc.__cause__ or exc}", retryable=True)
            except LLMResponseError as exc:
                error = exc
            except (ValueError, openai.APIResponseValidationError) as exc:  # a body that is not JSON
                error = LLMResponseError(f"malformed response from {self.base_url}: {exc}", retryable=True)
            if not error.retryable or attempt >= self.config.max_retries or self._down is not None:
                error.attempts = attempt + 1
                if attempt:
                    error.args = (f"{error.args[0]} (after {attempt + 1} attempts)",)
                raise error
            delay = self._backoff(attempt) if wait is None else min(wait, max(self.config.backoff_max, 1.0))
            log.warning("%s; retrying in %.2f s", error, delay)
            time.sleep(delay)
            attempt += 1

    def _kwargs(self, request, **override) -> dict:
        s = request.sampling
        kwargs = {"model": self.model_name, "messages": request.messages, "max_tokens": s.max_tokens,
                  "temperature": s.temperature, "top_p": s.top_p}
        if s.stop:
            kwargs["stop"] = list(s.stop)
        if s.seed is not None:
            kwargs["seed"] = s.seed
        if s.top_logprobs is not None:
            kwargs.update(logprobs=True, top_logprobs=s.top_logprobs)
        kwargs.update(override)
        return kwargs

    def _run_pool(self, fn, items, progress):
        def wrapped(item):
            try:
                return fn(item)
            finally:
                progress(1)

        if len(items) == 1 or self.config.concurrency == 1:
            return [wrapped(item) for item in items]
        with ThreadPoolExecutor(max_workers=min(self.config.concurrency, len(items))) as pool:
            return list(pool.map(wrapped, items))

    # -- completion ---------------------------------------------------------------------------
    def _complete_one(self, request) -> ChatResponse:
        try:
            completion, retries = self._call(self._kwargs(request))
        except LLMRequestError as exc:
            return ChatResponse.failure(exc, retries=exc.attempts - 1)
        choice = completion.choices[0]
        usage = completion.usage
        return ChatResponse(
            text=choice.message.content, finish_reason=choice.finish_reason or "stop",
            prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0,
            completion_tokens=getattr(usage, "completion_tokens", 0) or 0,
            model=completion.model or self.model_name, retries=retries, logprobs=_logprobs(choice),
        )

    def _generate(self, requests, progress):
        return self._run_pool(self._complete_one, requests, progress)

    # -- choice scoring (first token only, see the module docstring) ---------------------------
    def resolve_score_method(self, choices, method):
        if method not in ("auto", "first_token"):
            raise ValueError(f"the openai backend can only score the first token (method='first_token'), not {method!r}")
        return "first_token"

    def _score_one(self, request, choices) -> ChoiceScore:
        kwargs = self._kwargs(request, max_tokens=1, temperature=0.0, top_p=1.0, logprobs=True,
                              top_logprobs=MAX_TOP_LOGPROBS)
        kwargs.pop("stop", None)
        try:
            completion, _ = self._call(kwargs)
        except LLMRequestError as exc:
            return ChoiceScore(error=exc)
        tokens = _logprobs(completion.choices[0])
        if not tokens:
            return ChoiceScore(error=LLMResponseError(f"{self.base_url} returned no logprobs; the server must "
                                                      "support logprobs/top_logprobs for choice scoring"))
        mass = {c: 0.0 for c in choices}
        for token, logprob in tokens[0].top or [(tokens[0].token, tokens[0].logprob)]:
            if token.strip() in mass:
                mass[token.strip()] += math.exp(logprob)
        if not any(mass.values()):
            return ChoiceScore(error=LLMResponseError(f"none of the choices {choices} is among the top "
                                                      f"{MAX_TOP_LOGPROBS} first tokens"))
        logs = [math.log(v) if v > 0 else -math.inf for v in mass.values()]
        probs, coverage = renormalise(logs)
        usage = completion.usage
        return ChoiceScore(probs, coverage, prompt_tokens=getattr(usage, "prompt_tokens", 0) or 0)

    def _score(self, requests, choices, method, progress):
        return self._run_pool(lambda r: self._score_one(r, choices), requests, progress)

    def close(self) -> None:
        self.client.close()
        super().close()


def _message(exc) -> str:
    body = getattr(exc, "body", None)
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict) and inner.get("message"):
            return str(inner["message"])
    return str(getattr(exc, "message", exc))[:300]


def _logprobs(choice) -> list[TokenLogprob] | None:
    content = getattr(getattr(choice, "logprobs", None), "content", None)
    if not content:
        return None
    return [TokenLogprob(t.token, t.logprob, [(a.token, a.logprob) for a in (t.top_logprobs or [])]) for t in content]
