"""A causal LM run in-process with transformers: batched generation and next-token scoring.

Generation sorts prompts by length and runs ``batch_size`` of them per ``generate()`` call with
LEFT padding (positions come from the attention mask), so batched greedy output equals one
prompt at a time. Requests with different sampling settings go to different batches; different
``max_tokens`` share a batch and are cut per request.

Context window (``context_window``, default the model's ``max_position_embeddings``): a prompt
whose tokens plus ``max_tokens`` do not fit is, with ``overflow="error"`` (the default), a failed
request (:class:`ContextLengthError`, reported per request like any failure); with
``overflow="truncate_left"`` its oldest tokens are dropped with a warning, keeping the end of the
prompt (the question and the assistant turn header) and losing the start (system prompt,
oldest history). Cutting silently could change what is asked, hence the default.

Prompts are rendered with the tokenizer's chat template; a tokenizer without one (a base model)
gets the message contents joined by blank lines.
"""

from __future__ import annotations

import logging
import threading
import time

from lucidrec.lm.chat import choice_scoring
from lucidrec.lm.chat.base import ChatModel, ChoiceScore
from lucidrec.lm.chat.messages import ChatRequest, ChatResponse, TokenLogprob
from lucidrec.lm.config import TransformersChatConfig, chat_config
from lucidrec.lm.errors import ContextLengthError
from lucidrec.lm.models import load_causal_lm, locate_causal_lm

log = logging.getLogger(__name__)


class TransformersChatModel(ChatModel):
    """``hf_model=`` / ``hf_tokenizer=`` accept already-loaded objects (e.g. to share one model between
    a server and a client); otherwise the model is located at construction (a missing model fails
    at once) and loaded on first use. ``model=`` is the config field (name, folder or file)."""

    backend = "transformers"

    def __init__(self, config: TransformersChatConfig | dict | str | None = None, response_cache=None, *, hf_model=None,
                 hf_tokenizer=None, **overrides):
        if isinstance(config, str):
            config, overrides = None, {"model": config, **overrides}
        super().__init__(chat_config(config or "transformers", **overrides), response_cache)
        self.location = locate_causal_lm(self.config.model, self.config.gguf_file)
        self._model, self._tokenizer = hf_model, hf_tokenizer
        if hf_model is not None and hf_tokenizer is None:
            raise ValueError("pass the tokenizer together with an injected model")
        self._lock = threading.RLock()  # one forward pass at a time: torch already uses every core
        self.load_seconds = 0.0

    @property
    def model_id(self) -> str:
        return self.location.identity

    # -- loading ------------------------------------------------------------------------------
    def load(self):
        with self._lock:
            if self._model is None:
                started = time.perf_counter()
                self._model, self._tokenizer = load_causal_lm(
                    self.location, dtype=self.config.dtype, device=self.config.device,
                    convert_gguf=self.config.convert_gguf, models_dir=self.config.resolved_models_dir())
                self.load_seconds = time.perf_counter() - started
                log.info("loaded %s in %.1f s", self.model_id, self.load_seconds)
            if self._tokenizer.pad_token_id is None:
                self._tokenizer.pad_token = self._tokenizer.eos_token
            self._tokenizer.padding_side = "left"
        return self._model, self._tokenizer

    @property
    def model(self):
        return self.load()[0]

    @property
    def tokenizer(self):
        return self.load()[1]

    @property
    def context_window(self) -> int:
        return self.config.context_window or int(getattr(self.model.config, "max_position_embeddings", 2048))

    # -- prompts ------------------------------------------------------------------------------
    def render(self, messages: list[dict]) -> str:
        tokenizer = self.tokenizer
        if getattr(tokenizer, "chat_template", None):
            return tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return "\n\n".join(m["content"] for m in messages)

    def prompt_ids(self, request: ChatRequest, reserve: int) -> list[int]:
        """Token ids of the rendered prompt, checked against the window minus ``reserve`` tokens."""
        tokenizer = self.tokenizer
        has_template = bool(getattr(tokenizer, "chat_template", None))
        ids = tokenizer.encode(self.render(request.messages), add_special_tokens=not has_template)
        window = self.context_window
        if len(ids) + reserve <= window:
            return ids
        room = window - reserve
        message = (f"prompt of {len(ids)} tokens + {reserve} reserved for the answer exceeds the context window "
                   f"of {window} tokens of {self.model_id}")
        if self.config.overflow == "error" or room < 1:
            raise ContextLengthError(message + "; shorten the prompt, lower max_tokens, or set overflow='truncate_left'")
        log.warning("%s: keeping the last %d prompt tokens", message, room)
        return ids[-room:]

    @property
    def eos_ids(self) -> set[int]:
        ids = {self.tokenizer.eos_token_id}
        configured = getattr(self.model.generation_config, "eos_token_id", None)
        ids.update(configured if isinstance(configured, (list, tuple)) else [configured])
        return {i for i in ids if i is not None}

    @property
    def write_every(self) -> int:
        # Four generate() calls per cache write: prompts are length-sorted within it, so padding stays low.
        return 4 * self.config.batch_size

    # -- generation ---------------------------------------------------------------------------
    def _generate(self, requests, progress):
        out: list[ChatResponse | None] = [None] * len(requests)
        groups: dict[tuple, list[int]] = {}
        for i, request in enumerate(requests):
            s = request.sampling
            groups.setdefault((s.temperature, s.top_p, s.seed, s.top_logprobs), []).append(i)
        for indices in groups.values():
            prepared = []
            for i in indices:
                try:
                    prepared.append((i, self.prompt_ids(requests[i], requests[i].sampling.max_tokens)))
                except ContextLengthError as exc:
                    out[i] = ChatResponse.failure(exc)
                    progress(1)
            prepared.sort(key=lambda item: len(item[1]))
            for start in range(0, len(prepared), self.config.batch_size):
                chunk = prepared[start:start + self.config.batch_size]
                answers = self._generate_batch([ids for _, ids in chunk], [requests[i] for i, _ in chunk])
                for (i, _), answer in zip(chunk, answers):
                    out[i] = answer
                progress(len(chunk))
        return out

    def _generate_batch(self, batch: list[list[int]], requests: list[ChatRequest]) -> list[ChatResponse]:
        import torch

        model, tokenizer = self.load()
        s = requests[0].sampling
        max_new = max(r.sampling.max_tokens for r in requests)
        input_ids, mask = choice_scoring.left_pad(batch, tokenizer.pad_token_id)
        kwargs = {"max_new_tokens": max_new, "pad_token_id": tokenizer.pad_token_id, "eos_token_id": sorted(self.eos_ids),
                  "return_dict_in_generate": True, "output_logits": s.top_logprobs is not None}
        if s.temperature > 0:
            kwargs.update(do_sample=True, temperature=s.temperature, top_p=s.top_p, top_k=0)
        else:
            kwargs.update(do_sample=False, temperature=None, top_p=None, top_k=None)
        with self._lock, torch.inference_mode():
            if s.seed is not None:
                torch.manual_seed(s.seed)
            result = model.generate(input_ids=input_ids.to(model.device), attention_mask=mask.to(model.device), **kwargs)
        generated = result.sequences[:, input_ids.shape[1]:].cpu()
        step_logprobs = None
        if s.top_logprobs is not None:
            step_logprobs = torch.log_softmax(torch.stack(result.logits, dim=1).float(), dim=-1).cpu()
        return [self._response(row, generated[row].tolist(), len(batch[row]), requests[row], step_logprobs)
                for row in range(len(batch))]

    def _response(self, row: int, tokens: list[int], prompt_len: int, request: ChatRequest, step_logprobs) -> ChatResponse:
        tokenizer, eos = self.tokenizer, self.eos_ids
        limit = request.sampling.max_tokens
        end = next((j for j, t in enumerate(tokens) if t in eos), None)
        finish = "stop" if end is not None and end < limit else "length"
        kept = tokens[: min(end if end is not None else len(tokens), limit)]
        text = tokenizer.decode(kept, skip_special_tokens=True)
        for stop in request.sampling.stop or ():
            cut = text.find(stop)
            if cut >= 0:
                text, finish = text[:cut], "stop"
        logprobs = None
        if step_logprobs is not None:
            k = request.sampling.top_logprobs
            logprobs = []
            for j, token in enumerate(kept):
                dist = step_logprobs[row, j]
                top = dist.topk(k) if k else None
                alternatives = [] if top is None else [
                    (tokenizer.decode([int(t)]), float(v)) for v, t in zip(top.values, top.indices)]
                logprobs.append(TokenLogprob(tokenizer.decode([token]), float(dist[token]), alternatives))
        return ChatResponse(text=text, finish_reason=finish, prompt_tokens=prompt_len, completion_tokens=len(kept),
                            model=self.model_id, logprobs=logprobs)

    # -- choice scoring (see choice_scoring for the two methods) -------------------------------
    def resolve_score_method(self, choices, method):
        if method not in ("auto", "first_token", "sequence"):
            raise ValueError(f"method must be 'auto', 'first_token' or 'sequence', not {method!r}")
        token_ids = choice_scoring.choice_token_ids(self.tokenizer, choices)
        distinct = choice_scoring.first_tokens_distinct(token_ids)
        if method == "auto":
            return "first_token" if distinct else "sequence"
        if method == "first_token" and not distinct:
            raise ValueError(f"choices {choices} share first tokens {[t[0] for t in token_ids]}: first-token "
                             "probabilities cannot tell them apart; use method='sequence'")
        return method

    def _score(self, requests, choices, method, progress):
        model, tokenizer = self.load()
        token_ids = choice_scoring.choice_token_ids(tokenizer, choices)
        reserve = max(len(t) for t in token_ids) + 1
        out: list[ChoiceScore | None] = [None] * len(requests)
        prepared = []
        for i, request in enumerate(requests):
            try:
                prepared.append((i, self.prompt_ids(request, reserve)))
            except ContextLengthError as exc:
                out[i] = ChoiceScore(error=exc)
                progress(1)
        prepared.sort(key=lambda item: len(item[1]))
        # The sequence method repeats each prompt's cache once per choice: fewer prompts per pass.
        step = self.config.batch_size if method == "first_token" else max(1, 4 * self.config.batch_size // len(choices))
        for start in range(0, len(prepared), step):
            chunk = prepared[start:start + step]
            batch = [ids for _, ids in chunk]
            with self._lock:
                if method == "first_token":
                    scores = choice_scoring.score_first_token(model, batch, token_ids, tokenizer.pad_token_id)
                else:
                    scores = choice_scoring.score_sequences(model, batch, token_ids, tokenizer.pad_token_id,
                                                            tokenizer.eos_token_id)
            for (i, ids), (probs, coverage) in zip(chunk, scores):
                out[i] = ChoiceScore(probs, coverage, prompt_tokens=len(ids))
            progress(len(chunk))
        return out
