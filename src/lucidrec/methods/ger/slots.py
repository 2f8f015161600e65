"""Next-token distributions at several answer slots of one prompt, in ONE forward pass.

GER asks for m attribute scores per item. One prompt per (item, attribute) costs m forward
passes; a single JSON answer filled by teacher forcing lets every later score see (and copy)
the earlier ones. This helper does neither: it runs a *tree* of continuations in one pass.

Layout (token ids, per batch row)::

    [shared prefix P, run once, kept as a KV cache]  [item segment S_b]  [branch A_1] ... [branch A_m]

- the prefix (system prompt + attribute definitions) is the same for every item: it is encoded
  once and its key/value cache is reused by every batch;
- each branch ``A_k`` (e.g. ``"humour: "``) attends to the prefix, to the item segment and to
  itself, NOT to the other branches (a custom 4D attention mask), and its positions continue
  right after the segment: each branch sees exactly the sequence ``P + S_b + A_k``, as if it
  were a prompt of its own;
- the distribution over the choice tokens (``"1".."9"``) is read at the last token of each
  branch (``logits_to_keep`` keeps only those columns, so the LM head runs m times per row).

So the m scores of an item equal m separate prompts sharing a prefix (tested to float tolerance),
for the cost of ``|S_b| + sum |A_k|`` new tokens. Works with any causal LM in transformers that
accepts a 4D attention mask, position ids and a DynamicCache (Llama, Qwen2, Mistral, ...).
"""

from __future__ import annotations

import copy
import inspect
from dataclasses import dataclass

import numpy as np

from lucidrec.lm.models import kv_cache_keyword, returned_kv_cache
from lucidrec.lm.scoring import renormalise


@dataclass
class SlotScores:
    """``probs`` (B, m, C) renormalised over the choices; ``coverage`` (B, m) raw mass they held."""

    probs: np.ndarray
    coverage: np.ndarray


class SlotScorer:
    """Score ``segments`` (lists of token ids) at the end of every branch.

    ``prefix_ids`` is shared by every row; ``branch_ids`` are the m answer stems; ``choice_ids``
    are single token ids (the scale's labels).
    """

    def __init__(self, model, prefix_ids: list[int], branch_ids: list[list[int]], choice_ids: list[int], pad_id: int = 0):
        if not branch_ids or any(len(b) == 0 for b in branch_ids):
            raise ValueError("every branch needs at least one token")
        if len(set(choice_ids)) != len(choice_ids):
            raise ValueError(f"choice tokens must be distinct, got {choice_ids}")
        self.model = model
        self.prefix_ids = list(prefix_ids)
        self.branch_ids = [list(b) for b in branch_ids]
        self.choice_ids = list(choice_ids)
        self.pad_id = pad_id
        self._cache = None
        self._keep_tensor = "logits_to_keep" in inspect.signature(model.forward).parameters

    @property
    def n_branches(self) -> int:
        return len(self.branch_ids)

    def _prefix_cache(self):
        import torch

        if self._cache is None:
            if not self.prefix_ids:
                raise ValueError("the shared prefix is empty")
            ids = torch.tensor([self.prefix_ids], dtype=torch.long, device=self.model.device)
            # no_grad, not inference_mode: the differentiable path reads these keys/values as constants,
            # and autograd refuses to save inference tensors for backward.
            with torch.no_grad():
                out = self.model(input_ids=ids, use_cache=True)
            self._cache = returned_kv_cache(out)
        return self._cache

    def reset_prefix(self) -> None:
        """Forget the prefix cache (after the model's weights changed, e.g. a tuning step)."""
        self._cache = None

    def layout(self, segments: list[list[int]]):
        """(input_ids, position_ids, 4D float mask, read columns) for a batch of segments (torch)."""
        import torch

        P = len(self.prefix_ids)
        B = len(segments)
        width = max(len(s) for s in segments)
        starts, offset = [], width
        for branch in self.branch_ids:
            starts.append(offset)
            offset += len(branch)
        T = offset
        ids = torch.full((B, T), self.pad_id, dtype=torch.long)
        pos = torch.full((B, T), P, dtype=torch.long)
        allowed = torch.zeros((B, T, P + T), dtype=torch.bool)
        allowed[:, :, :P] = True  # everyone sees the shared prefix (pad queries see only that)
        causal = torch.ones((T, T), dtype=torch.bool).tril()
        for b, segment in enumerate(segments):
            n = len(segment)
            if n:
                ids[b, :n] = torch.tensor(segment, dtype=torch.long)
                pos[b, :n] = P + torch.arange(n)
                allowed[b, :n, P:P + n] = causal[:n, :n]
            for start, branch in zip(starts, self.branch_ids):
                k = len(branch)
                ids[b, start:start + k] = torch.tensor(branch, dtype=torch.long)
                pos[b, start:start + k] = P + n + torch.arange(k)
                allowed[b, start:start + k, P:P + n] = True  # the item segment
                allowed[b, start:start + k, P + start:P + start + k] = causal[:k, :k]  # itself, causally
        read = torch.tensor([s + len(br) - 1 for s, br in zip(starts, self.branch_ids)], dtype=torch.long)
        return ids, pos, allowed, read

    def choice_logprobs(self, segments: list[list[int]], *, grad: bool = False):
        """(B, m, C) torch log-probabilities of the choice tokens (over the whole vocabulary) at every
        branch. With ``grad=True`` the graph is kept for training (the prefix's keys and values are
        constants: its gradient is not propagated, see ``lucidrec.methods.ger.tuning``)."""
        import torch

        model = self.model
        ids, pos, allowed, read = self.layout(segments)
        if getattr(model.config, "_attn_implementation", None) == "sdpa":
            mask = allowed[:, None]  # boolean, True = may attend (SDPA's convention; its faster path)
        else:
            dtype = next(model.parameters()).dtype
            mask = torch.zeros(allowed.shape, dtype=dtype).masked_fill_(~allowed, torch.finfo(dtype).min)[:, None]
        cache = copy.deepcopy(self._prefix_cache())
        cache.batch_repeat_interleave(len(segments))
        device = model.device
        extra = {"logits_to_keep": read.to(device)} if self._keep_tensor else {}
        extra[kv_cache_keyword(model)] = cache
        context = torch.enable_grad() if grad else torch.inference_mode()
        with context:
            out = model(input_ids=ids.to(device), position_ids=pos.to(device), attention_mask=mask.to(device),
                        use_cache=True, **extra)
            logits = out.logits if self._keep_tensor else out.logits[:, read.to(device)]
            return torch.log_softmax(logits.float(), dim=-1)[:, :, self.choice_ids]

    def score(self, segments: list[list[int]]) -> SlotScores:
        logprobs = self.choice_logprobs(segments).cpu().numpy()
        probs = np.empty(logprobs.shape, dtype=np.float64)
        coverage = np.empty(logprobs.shape[:2], dtype=np.float64)
        for b in range(logprobs.shape[0]):
            for k in range(logprobs.shape[1]):
                probs[b, k], coverage[b, k] = renormalise(logprobs[b, k])
        return SlotScores(probs, coverage)


def reference_scores(model, prefix_ids, segment, branch_ids, choice_ids) -> SlotScores:
    """The slow reference: one plain causal forward per branch over ``prefix + segment + branch``."""
    import torch

    probs, coverage = [], []
    with torch.inference_mode():
        for branch in branch_ids:
            ids = torch.tensor([list(prefix_ids) + list(segment) + list(branch)], dtype=torch.long, device=model.device)
            last = torch.log_softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)[choice_ids].cpu().numpy()
            p, c = renormalise(last)
            probs.append(p)
            coverage.append(c)
    return SlotScores(np.array([probs]), np.array([coverage]))
