"""In-batch contrastive losses between two aligned batches of vectors (row i of ``x`` pairs with row i of ``y``).

- :func:`info_nce`: the standard InfoNCE / CLIP loss: cosine logits (L2-normalised rows) over a
  temperature, one-hot targets (the diagonal), optionally symmetric (x->y and y->x averaged).
- :func:`soft_contrastive`: the LLMEmb reference code's ``Contrastive_Loss`` (SCFT) and
  ``Contrastive_Loss2`` (RAT alignment): raw dot-product logits ``x yᵀ / τ`` and *soft* targets
  ``softmax(τ · (x xᵀ + y yᵀ) / 2)`` row-wise, cross-entropy in both directions averaged. Rows are
  not normalised (as in the code); ``τ`` may be a learnable tensor.

Both return the mean over the batch. Shared by LLMEmb (SCFT, alignment) and any other method that
aligns two views or two spaces.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

ContrastiveName = Literal["infonce", "soft"]


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor = 0.05, *,
             normalize: bool = True, symmetric: bool = True) -> torch.Tensor:
    """InfoNCE with the diagonal as targets: ``CE(x̂ ŷᵀ / τ, arange)`` (+ the transposed term)."""
    _check(x, y)
    if normalize:
        x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    logits = x @ y.T / temperature
    targets = torch.arange(len(x), device=x.device)
    loss = F.cross_entropy(logits, targets)
    if symmetric:
        loss = (loss + F.cross_entropy(logits.T, targets)) / 2
    return loss


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """Per-row ``-Σ_j targets_ij · log_softmax(logits)_ij``."""
    return -(targets * F.log_softmax(logits, dim=-1)).sum(-1)


def soft_contrastive(x: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor = 1.0) -> torch.Tensor:
    """LLMEmb's soft-target loss: logits ``x yᵀ / τ``, targets ``softmax(τ·(x xᵀ + y yᵀ)/2)``, symmetric CE."""
    _check(x, y)
    logits = x @ y.T / temperature
    targets = F.softmax((x @ x.T + y @ y.T) / 2 * temperature, dim=-1)
    return ((soft_cross_entropy(logits, targets) + soft_cross_entropy(logits.T, targets.T)) / 2).mean()


def contrastive_loss(name: ContrastiveName, x: torch.Tensor, y: torch.Tensor,
                     temperature: float | torch.Tensor) -> torch.Tensor:
    if name == "infonce":
        return info_nce(x, y, temperature)
    if name == "soft":
        return soft_contrastive(x, y, temperature)
    raise ValueError(f"unknown contrastive loss '{name}' (valid: infonce, soft)")


def _check(x: torch.Tensor, y: torch.Tensor) -> None:
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"contrastive losses need two (B, d) batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
