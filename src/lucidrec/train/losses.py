"""Next-item losses, chosen by name (not by subclassing the backbone).

All take per-position states (N, d) at the positions that have a target, the targets (N,), and
the item embedding; the vectors of negatives come from the same item embedding.

- ``bce``: binary cross-entropy, the positive against ``n_negatives`` uniformly drawn items per
  position (SASRec's original loss; LLMEmb and LANE use it with one negative, the default).
- ``sampled_softmax``: softmax over the positive and ``n_negatives`` uniform negatives shared by
  the batch (a collision with the positive is masked out).
- ``ce``: full softmax over the whole catalog.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

LossName = Literal["bce", "sampled_softmax", "ce"]


def next_item_loss(name: LossName, states: torch.Tensor, targets: torch.Tensor, items, n_items: int,
                   n_negatives: int, generator: torch.Generator) -> torch.Tensor:
    if name == "ce":
        logits = states @ items.table().T
        logits[:, 0] = -torch.inf
        return F.cross_entropy(logits, targets)
    positives = (states * items(targets)).sum(-1)
    if name == "bce":
        negatives = torch.randint(1, n_items + 1, (len(targets), n_negatives), generator=generator)
        negative_scores = torch.einsum("nd,nkd->nk", states, items(negatives))
        positive_term = F.binary_cross_entropy_with_logits(positives, torch.ones_like(positives))
        return positive_term + F.binary_cross_entropy_with_logits(negative_scores, torch.zeros_like(negative_scores))
    if name == "sampled_softmax":
        negatives = torch.randint(1, n_items + 1, (n_negatives,), generator=generator)
        negative_scores = states @ items(negatives).T
        negative_scores = negative_scores.masked_fill(negatives[None, :] == targets[:, None], -torch.inf)
        logits = torch.cat([positives[:, None], negative_scores], dim=1)
        return F.cross_entropy(logits, torch.zeros(len(targets), dtype=torch.long))
    raise ValueError(f"unknown loss '{name}' (valid: bce, sampled_softmax, ce)")
