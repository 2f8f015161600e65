"""A frozen causal LM that reads soft tokens: vectors spliced into a prompt at slot markers.

A prompt such as ``"What was added between <SeqHere> and <SeqHere>?"`` is rendered with the
tokenizer's chat template (a tokenizer without one gets the plain text, said once in the log) and
split at the slots into a :class:`PromptLayout`::

    [constant prefix: run once, kept as a key/value cache] [soft_1] [text_1] [soft_2] [text_2] ...

Each slot holds ``slot_width`` soft tokens (rows of ``soft``, shape ``(B, n_soft, d_lm)``) that go
into the LM as ``inputs_embeds`` next to the embeddings of the text tokens. Everything after the
prefix is the same length for every row of a batch (one template per batch), so only answers
are padded (on the right), and positions never shift.

What the layer offers, all exact with respect to the plain text path (tested: soft tokens equal to
the embeddings of text tokens give the same log-likelihoods and the same greedy answers):

- :meth:`SoftPromptLM.answer_logprobs` / :meth:`SoftPromptLM.loss`: log P(answer tokens + end)
  given the soft tokens, differentiable with respect to ``soft`` only (the LM is frozen: its
  parameters never require gradients, so an optimizer over the LM's parameters has nothing to do);
- :meth:`SoftPromptLM.generate`: greedy answers;
- :meth:`SoftPromptLM.rank_candidates`: log P(candidate + end) for many fixed candidates (catalog
  titles): the prompt runs once per row and its cache is shared by chunks of candidates.
- :meth:`SoftPromptLM.candidate_ranks`: the rank of one candidate per row among them, running only
  the candidates whose first token can still beat it (optionally stopping at a cap).
"""

from __future__ import annotations

import copy
import inspect
import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import torch
from pydantic import Field

from lucidrec.config import StrictConfig
from lucidrec.lm.config import DEFAULT_CHAT_MODEL
from lucidrec.lm.models import kv_cache_keyword, load_causal_lm, locate_causal_lm, returned_kv_cache
from lucidrec.settings import user_cache_dir

log = logging.getLogger(__name__)

SLOT = "<SeqHere>"
IGNORE = -100  # label of positions that do not count in the loss (torch's cross-entropy convention)


class SoftPromptLMConfig(StrictConfig):
    """Which frozen causal LM reads the soft tokens (same resolution as the chat models)."""

    model: str = Field(DEFAULT_CHAT_MODEL, description="folder, hub id, .gguf file, or the default SmolLM2")
    gguf_file: str | None = Field(None, description="GGUF file name inside `model`")
    dtype: Literal["float32", "bfloat16"] = "float32"
    device: str = "cpu"
    convert_gguf: bool = Field(True, description="keep (and reuse) a fast-loading copy of GGUF models")
    models_dir: Path | None = Field(None, description="where converted copies live; default user_cache_dir()/models")


@dataclass(frozen=True)
class PromptLayout:
    """A rendered prompt split at its slots: ``prefix`` ids, then per slot ``slot_width`` soft tokens
    followed by the text ids ``pieces[s]`` (possibly empty)."""

    prefix: tuple[int, ...]
    pieces: tuple[tuple[int, ...], ...]
    slot_width: int = 1

    @property
    def n_slots(self) -> int:
        return len(self.pieces)

    @property
    def n_soft(self) -> int:
        return self.n_slots * self.slot_width

    @property
    def body_length(self) -> int:
        """Tokens after the prefix (soft tokens and text), before the answer."""
        return self.n_soft + sum(len(p) for p in self.pieces)

    def text_ids(self, soft_ids: list[int]) -> list[int]:
        """The plain token sequence when the soft tokens are the embeddings of ``soft_ids`` (for tests)."""
        if len(soft_ids) != self.n_soft:
            raise ValueError(f"{len(soft_ids)} ids for {self.n_soft} soft tokens")
        out, w = list(self.prefix), self.slot_width
        for s, piece in enumerate(self.pieces):
            out += soft_ids[s * w:(s + 1) * w] + list(piece)
        return out


class SoftPromptLM:
    """A frozen causal LM (any transformers ``*ForCausalLM``) with a soft-token input path."""

    def __init__(self, model, tokenizer, identity: str = "injected"):
        self.model = model
        self.tokenizer = tokenizer
        self.identity = identity
        model.requires_grad_(False)
        model.eval()
        self.end_id = int(tokenizer.eos_token_id)
        self.pad_id = int(tokenizer.pad_token_id if tokenizer.pad_token_id is not None else self.end_id)
        self.has_chat_template = bool(getattr(tokenizer, "chat_template", None))
        if not self.has_chat_template:
            log.warning("%s has no chat template: prompts are given as plain text", identity)
        self._prefix_caches: dict[tuple[int, ...], object] = {}
        self._keeps_logits = "logits_to_keep" in inspect.signature(model.forward).parameters
        head = model.get_output_embeddings()
        if head is not None and not getattr(head, "_lucidrec_contiguous", False):
            # logits_to_keep hands the head a strided slice of the hidden states; a linear layer on a
            # non-contiguous 3-D input takes a batched-matmul path about 6x slower on CPU (measured).
            head.register_forward_pre_hook(lambda module, args: (args[0].contiguous(), *args[1:]))
            head._lucidrec_contiguous = True

    @classmethod
    def load(cls, config: SoftPromptLMConfig | None = None) -> "SoftPromptLM":
        config = config or SoftPromptLMConfig()
        location = locate_causal_lm(config.model, config.gguf_file)
        models_dir = Path(config.models_dir).expanduser() if config.models_dir else user_cache_dir() / "models"
        model, tokenizer = load_causal_lm(location, dtype=config.dtype, device=config.device,
                                          convert_gguf=config.convert_gguf, models_dir=models_dir)
        return cls(model, tokenizer, identity=location.identity)

    @property
    def dim(self) -> int:
        return int(self.model.get_input_embeddings().embedding_dim)

    @property
    def device(self):
        return self.model.device

    # -- prompts ----------------------------------------------------------------------------------
    def render(self, user_text: str, system: str | None = None) -> str:
        if not self.has_chat_template:
            return "\n\n".join(t for t in (system, user_text) if t) + "\n\n"
        messages = ([{"role": "system", "content": system}] if system else []) + [{"role": "user", "content": user_text}]
        return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)

    def layout(self, user_text: str, *, slot: str = SLOT, slot_width: int = 1, system: str | None = None) -> PromptLayout:
        """Render ``user_text`` (which holds ``slot`` markers) and split it into token ids at the slots."""
        if slot not in user_text:
            raise ValueError(f"prompt {user_text!r} has no {slot} slot")
        parts = self.render(user_text, system).split(slot)
        encode = lambda text: tuple(self.tokenizer.encode(text, add_special_tokens=False))  # noqa: E731
        prefix = encode(parts[0])
        bos = self.tokenizer.bos_token_id
        if not self.has_chat_template and bos is not None and (not prefix or prefix[0] != bos):
            prefix = (int(bos), *prefix)
        return PromptLayout(prefix, tuple(encode(p) for p in parts[1:]), slot_width)

    def encode_answer(self, text: str) -> list[int]:
        """Answer tokens followed by the end-of-turn token (the answer must stop there)."""
        return list(self.tokenizer.encode(text, add_special_tokens=False)) + [self.end_id]

    def decode(self, ids: list[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True).strip()

    # -- the forward pieces -----------------------------------------------------------------------
    def embed_ids(self, ids) -> torch.Tensor:
        table = self.model.get_input_embeddings()
        return table(torch.as_tensor(ids, dtype=torch.long, device=self.device))

    def _prefix_cache(self, layout: PromptLayout, rows: int):
        """A fresh copy of the prefix's key/value cache for ``rows`` rows (None when there is no prefix)."""
        if not layout.prefix:
            return None
        cache = self._prefix_caches.get(layout.prefix)
        if cache is None:
            with torch.no_grad():  # not inference_mode: the differentiable path reads these as constants
                out = self.model(input_ids=torch.tensor([layout.prefix], device=self.device), use_cache=True)
            cache = self._prefix_caches[layout.prefix] = returned_kv_cache(out)
        cache = copy.deepcopy(cache)
        if rows > 1:
            cache.batch_repeat_interleave(rows)
        return cache

    def body_embeddings(self, layout: PromptLayout, soft: torch.Tensor) -> torch.Tensor:
        """(B, body_length, d): the soft tokens and the text between and after them."""
        if soft.dim() != 3 or soft.shape[1] != layout.n_soft or soft.shape[2] != self.dim:
            raise ValueError(f"soft tokens must have shape (B, {layout.n_soft}, {self.dim}), got {tuple(soft.shape)}")
        rows, w = soft.shape[0], layout.slot_width
        parts = []
        for s, piece in enumerate(layout.pieces):
            parts.append(soft[:, s * w:(s + 1) * w].to(self.model.dtype))
            if piece:
                parts.append(self.embed_ids(list(piece)).unsqueeze(0).expand(rows, -1, -1))
        return torch.cat(parts, dim=1)

    def _forward(self, layout: PromptLayout, embeds: torch.Tensor, mask: torch.Tensor, keep: int, cache=None):
        """Run ``embeds`` (B, T, d) after the prefix; logits of the last ``keep`` positions."""
        rows, width = embeds.shape[:2]
        start = len(layout.prefix) if cache is None else cache.get_seq_length()
        if cache is None:
            cache = self._prefix_cache(layout, rows)
        full_mask = torch.cat([torch.ones(rows, start, dtype=torch.long, device=self.device), mask.to(self.device)], 1)
        positions = (start + torch.arange(width, device=self.device)).unsqueeze(0).expand(rows, -1)
        kwargs = {"logits_to_keep": keep} if self._keeps_logits else {}
        if cache is not None:
            kwargs[kv_cache_keyword(self.model)] = cache
        out = self.model(inputs_embeds=embeds, attention_mask=full_mask, position_ids=positions, use_cache=True, **kwargs)
        return out.logits[:, -keep:], returned_kv_cache(out)

    # -- likelihood and loss ----------------------------------------------------------------------
    def answer_logprobs(self, layout: PromptLayout, soft: torch.Tensor, answers: list[list[int]]):
        """(token log-probs (B, La), mask (B, La)) of each row's answer ids given its soft tokens.

        ``answers`` already end with the end token (:meth:`encode_answer`); rows are right-padded.
        Differentiable with respect to ``soft`` when called with gradients enabled."""
        if len(answers) != soft.shape[0] or any(len(a) == 0 for a in answers):
            raise ValueError("one non-empty answer per row of soft tokens is needed")
        body = self.body_embeddings(layout, soft)
        width = max(len(a) for a in answers)
        ids = torch.full((len(answers), width), self.pad_id, dtype=torch.long)
        answer_mask = torch.zeros((len(answers), width), dtype=torch.long)
        for row, answer in enumerate(answers):
            ids[row, :len(answer)] = torch.tensor(answer)
            answer_mask[row, :len(answer)] = 1
        # Teacher forcing: the answer's last token is predicted, never fed.
        embeds = torch.cat([body, self.embed_ids(ids[:, :-1])], dim=1)
        mask = torch.cat([torch.ones(len(answers), body.shape[1], dtype=torch.long), answer_mask[:, :-1]], 1)
        logits, _ = self._forward(layout, embeds, mask, keep=width)
        logprobs = torch.log_softmax(logits.float(), dim=-1)
        picked = logprobs.gather(-1, ids.to(self.device).unsqueeze(-1)).squeeze(-1)
        return picked, answer_mask.to(picked.device)

    def loss(self, layout: PromptLayout, soft: torch.Tensor, answers: list[list[int]]) -> torch.Tensor:
        """Mean cross-entropy over the answer tokens only (prompt, soft and padding positions excluded)."""
        picked, mask = self.answer_logprobs(layout, soft, answers)
        return -(picked * mask).sum() / mask.sum()

    # -- generation -------------------------------------------------------------------------------
    @torch.no_grad()
    def generate(self, layout: PromptLayout, soft: torch.Tensor, max_new_tokens: int = 32) -> list[list[int]]:
        """Greedy answers (token ids, without the end token) for each row of soft tokens."""
        body = self.body_embeddings(layout, soft)
        rows = body.shape[0]
        logits, cache = self._forward(layout, body, torch.ones(rows, body.shape[1], dtype=torch.long), keep=1)
        finished = torch.zeros(rows, dtype=torch.bool)
        out: list[list[int]] = [[] for _ in range(rows)]
        mask = torch.ones(rows, len(layout.prefix) + body.shape[1], dtype=torch.long)
        for _ in range(max_new_tokens):
            step = logits[:, -1].argmax(-1).cpu()
            for row in range(rows):
                if not finished[row]:
                    if int(step[row]) == self.end_id:
                        finished[row] = True
                    else:
                        out[row].append(int(step[row]))
            if bool(finished.all()):
                break
            # Rows that finished keep running (batch shape) but their tokens are ignored.
            mask = torch.cat([mask, torch.ones(rows, 1, dtype=torch.long)], 1)
            position = torch.full((rows, 1), mask.shape[1] - 1, dtype=torch.long, device=self.device)
            result = self.model(input_ids=step.unsqueeze(1).to(self.device), attention_mask=mask.to(self.device),
                                position_ids=position, use_cache=True, **{kv_cache_keyword(self.model): cache})
            logits, cache = result.logits, returned_kv_cache(result)
        return out

    # -- ranking fixed candidates -----------------------------------------------------------------
    def _score_chunk(self, layout: PromptLayout, cache, first: torch.Tensor, candidates: list[list[int]],
                     members: list[int]) -> list[float]:
        """log P(candidate) for ``members`` behind one row's prompt cache (``first``: the prompt's last log-probs)."""
        width = max(len(candidates[k]) for k in members) - 1
        if width == 0:  # single-token candidates: the prompt's last logits are all there is
            return [float(first[candidates[k][0]]) for k in members]
        ids = torch.full((len(members), width), self.pad_id, dtype=torch.long)
        mask = torch.zeros_like(ids)
        for i, k in enumerate(members):
            ids[i, :len(candidates[k]) - 1] = torch.tensor(candidates[k][:-1])
            mask[i, :len(candidates[k]) - 1] = 1
        expanded = copy.deepcopy(cache)
        expanded.batch_repeat_interleave(len(members))
        steps, _ = self._forward(layout, self.embed_ids(ids), mask, keep=width, cache=expanded)
        steps = torch.log_softmax(steps.float(), dim=-1).cpu()
        scores = []
        for i, k in enumerate(members):
            target = candidates[k]
            tail = steps[i, torch.arange(len(target) - 1), torch.tensor(target[1:])].double().sum()
            scores.append(float(first[target[0]]) + float(tail))
        return scores

    def _prompt_state(self, layout: PromptLayout, body_row: torch.Tensor):
        logits, cache = self._forward(layout, body_row[None], torch.ones(1, body_row.shape[0], dtype=torch.long), keep=1)
        return torch.log_softmax(logits[0, -1].float(), dim=-1).cpu(), cache

    @torch.no_grad()
    def candidate_ranks(self, layout: PromptLayout, soft: torch.Tensor, candidates: list[list[int]],
                        targets: list[int], chunk: int = 64, cap: int | None = None, progress=None) -> torch.Tensor:
        """(B,) 0-based rank of candidate ``targets[b]`` (candidates with a strictly higher log P), exactly as
        from :meth:`rank_candidates`, but scoring only the candidates that can beat the target.

        A candidate's log-probability is at most that of its first token, which the prompt's last logits
        give for free: candidates whose first token is already less likely than the whole target cannot
        outrank it and are never run. The others are run best first token first; with ``cap``, a row stops
        once ``cap`` candidates beat its target (its rank is then reported as ``cap``: enough for top-k
        with k <= cap)."""
        if any(len(c) == 0 for c in candidates):
            raise ValueError("every candidate needs at least one token")
        if len(targets) != soft.shape[0]:
            raise ValueError(f"{len(targets)} targets for {soft.shape[0]} rows of soft tokens")
        body = self.body_embeddings(layout, soft)
        ranks = torch.empty(body.shape[0], dtype=torch.long)
        firsts = torch.tensor([c[0] for c in candidates])
        for row in range(body.shape[0]):
            first, cache = self._prompt_state(layout, body[row])
            target = int(targets[row])
            target_score = self._score_chunk(layout, cache, first, candidates, [target])[0]
            bounds = first[firsts].double()
            hopeful = [k for k in torch.argsort(bounds, descending=True, stable=True).tolist()
                       if k != target and float(bounds[k]) > target_score]
            above = 0
            for start in range(0, len(hopeful), chunk):
                members = hopeful[start:start + chunk]
                above += sum(s > target_score for s in self._score_chunk(layout, cache, first, candidates, members))
                if progress is not None:
                    progress(sum(len(candidates[k]) - 1 for k in members))
                if cap is not None and above >= cap:
                    above = cap
                    break
            ranks[row] = above
        return ranks

    @torch.no_grad()
    def rank_candidates(self, layout: PromptLayout, soft: torch.Tensor, candidates: list[list[int]],
                        chunk: int = 64, progress=None) -> torch.Tensor:
        """(B, K) log P(candidate ids | soft prompt) for every row and candidate (ids end with the end token).

        Per row the prompt runs once; its cache is copied for ``chunk`` candidates at a time, sorted by
        length so little padding is run. ``progress(n)`` is called with the tokens run per chunk."""
        if any(len(c) == 0 for c in candidates):
            raise ValueError("every candidate needs at least one token")
        order = sorted(range(len(candidates)), key=lambda k: len(candidates[k]))
        body = self.body_embeddings(layout, soft)
        out = torch.empty(body.shape[0], len(candidates), dtype=torch.float64)
        for row in range(body.shape[0]):
            first, cache = self._prompt_state(layout, body[row])
            for start in range(0, len(order), chunk):
                members = order[start:start + chunk]
                for k, score in zip(members, self._score_chunk(layout, cache, first, candidates, members)):
                    out[row, k] = score
                if progress is not None:
                    progress(sum(len(candidates[k]) - 1 for k in members))
        return out
