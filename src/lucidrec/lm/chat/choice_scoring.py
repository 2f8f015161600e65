"""Next-token scoring of fixed choices with a local causal LM (torch code, imported lazily).

Two methods:

- ``first_token``: ONE forward pass over the (left-padded) prompts; a choice's probability is
  the probability of its first token. Exact when every choice is a single token ("1".."9",
  "A"/"B"), and refused when two choices share a first token (e.g. "1" and "10" in SmolLM2's
  tokenizer, which writes "10" as "1" + "0"), because the two would be indistinguishable.
- ``sequence``: the full log-likelihood of each choice's tokens followed by the end-of-turn token
  (``eos``), so "1" means "1 and stop" and "10" means "1, 0 and stop". The prompt is run once
  with its key/value cache kept; the cache is repeated once per choice and only the choice tokens
  are run on top of it, so the cost is one prompt pass plus a few tokens per choice.

``auto`` picks ``first_token`` when the first tokens are distinct, else ``sequence``. Either way
the log-probabilities are renormalised over the choices (rows sum to 1) and the raw mass they
held is reported as coverage.
"""

from __future__ import annotations

import inspect

import numpy as np

from lucidrec.lm.models import kv_cache_keyword, returned_kv_cache
from lucidrec.lm.scoring import renormalise


def choice_token_ids(tokenizer, choices: list[str]) -> list[list[int]]:
    ids = [tokenizer.encode(c, add_special_tokens=False) for c in choices]
    for choice, tokens in zip(choices, ids):
        if not tokens:
            raise ValueError(f"choice {choice!r} encodes to no tokens")
    return ids


def first_tokens_distinct(token_ids: list[list[int]]) -> bool:
    firsts = [t[0] for t in token_ids]
    return len(set(firsts)) == len(firsts)


def left_pad(batch: list[list[int]], pad_id: int):
    import torch

    width = max(len(ids) for ids in batch)
    input_ids = torch.full((len(batch), width), pad_id, dtype=torch.long)
    mask = torch.zeros((len(batch), width), dtype=torch.long)
    for row, ids in enumerate(batch):
        input_ids[row, width - len(ids):] = torch.tensor(ids, dtype=torch.long)
        mask[row, width - len(ids):] = 1
    return input_ids, mask


def _prompt_pass(model, batch: list[list[int]], pad_id: int, keep_cache: bool):
    import torch

    input_ids, mask = left_pad(batch, pad_id)
    positions = (mask.cumsum(-1) - 1).clamp(min=0)  # left padding must not shift positions
    device = model.device
    extra = {"logits_to_keep": 1} if "logits_to_keep" in inspect.signature(model.forward).parameters else {}
    out = model(input_ids=input_ids.to(device), attention_mask=mask.to(device), position_ids=positions.to(device),
                use_cache=keep_cache, **extra)
    last = torch.log_softmax(out.logits[:, -1].float(), dim=-1)
    return last, mask, returned_kv_cache(out) if keep_cache else None


def score_first_token(model, batch: list[list[int]], token_ids: list[list[int]], pad_id: int):
    """[(probs, coverage)] per prompt from one forward pass."""
    import torch

    firsts = [t[0] for t in token_ids]
    with torch.inference_mode():
        last, _, _ = _prompt_pass(model, batch, pad_id, keep_cache=False)
    picked = last[:, firsts].cpu().numpy()
    return [renormalise(row) for row in picked]


def score_sequences(model, batch: list[list[int]], token_ids: list[list[int]], pad_id: int, eos_id: int):
    """[(probs, coverage)] per prompt from log P(choice tokens + eos | prompt)."""
    import torch

    targets = [ids + [eos_id] for ids in token_ids]
    n_prompts, n_choices = len(batch), len(targets)
    width = max(len(t) for t in targets) - 1
    with torch.inference_mode():
        first, mask, cache = _prompt_pass(model, batch, pad_id, keep_cache=True)
        cache.batch_repeat_interleave(n_choices)  # row b*K + k continues prompt b with choice k
        cont = torch.full((n_prompts * n_choices, width), pad_id, dtype=torch.long)
        cont_mask = torch.zeros_like(cont)
        for b in range(n_prompts):
            for k, target in enumerate(targets):
                cont[b * n_choices + k, : len(target) - 1] = torch.tensor(target[:-1])
                cont_mask[b * n_choices + k, : len(target) - 1] = 1
        lengths = mask.sum(-1).repeat_interleave(n_choices)
        positions = lengths[:, None] + torch.arange(width)[None]
        device = model.device
        out = model(input_ids=cont.to(device), attention_mask=torch.cat([mask.repeat_interleave(n_choices, 0), cont_mask], 1).to(device),
                    position_ids=positions.to(device), use_cache=False, **{kv_cache_keyword(model): cache})
        steps = torch.log_softmax(out.logits.float(), dim=-1).cpu()
    first = first.cpu()
    results = []
    for b in range(n_prompts):
        logs = np.empty(n_choices)
        for k, target in enumerate(targets):
            total = float(first[b, target[0]])
            for j in range(1, len(target)):
                total += float(steps[b * n_choices + k, j - 1, target[j]])
            logs[k] = total
        results.append(renormalise(logs))
    return results
