"""In-batch contrastive losses between two aligned batches of vectors (row i of ``x`` pairs with row i of ``y``).

- :func:`info_nce`: the standard InfoNCE / CLIP loss: cosine logits (L2-normalised rows) over a
  temperature, one-hot targets (the diagonal), optionally symmetric (x->y and y->x averaged).
- :func:`soft_contrastive`: the LLMEmb reference code's ``Contrastive_Loss`` (SCFT) and
  ``Contrastive_Loss2`` (RAT alignment): raw dot-product logits ``x yᵀ / τ`` and *soft* targets
  ``softmax(τ · (x xᵀ + y yᵀ) / 2)`` row-wise, cross-entropy in both directions averaged. Rows are
  not normalised (as in the code); ``τ`` may be a learnable tensor.

Both return the mean over the batch. Shared by LLMEmb (SCFT, alignment) and any other method that
aligns two views or two spaces.

In-batch false negatives: given ``x_keys`` / ``y_keys`` (one id per row: what the row *is*, e.g. its item's
text), a column holding a copy of a row's positive (same key, other position) is left out of that row's
softmax (logit ``-inf``) and of its soft targets, instead of being pushed away as a negative.
"""

from __future__ import annotations

from typing import Literal

import torch
import torch.nn.functional as F

ContrastiveName = Literal["infonce", "soft"]


def false_negatives(keys: torch.Tensor | None) -> torch.Tensor | None:
    """(B, B) True where column j's key equals row i's and j != i: a copy of row i's positive, no negative."""
    if keys is None:
        return None
    same = keys[:, None] == keys[None, :]
    return same & ~torch.eye(len(keys), dtype=torch.bool, device=keys.device)


def _masked(values: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    return values if mask is None else values.masked_fill(mask, float("-inf"))


def info_nce(x: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor = 0.05, *,
             normalize: bool = True, symmetric: bool = True, x_keys: torch.Tensor | None = None,
             y_keys: torch.Tensor | None = None) -> torch.Tensor:
    """InfoNCE with the diagonal as targets: ``CE(x̂ ŷᵀ / τ, arange)`` (+ the transposed term); columns that are
    copies of the row's positive (equal ``y_keys``; ``x_keys`` for the transposed term) masked out."""
    _check(x, y, x_keys, y_keys)
    if normalize:
        x, y = F.normalize(x, dim=-1), F.normalize(y, dim=-1)
    logits = x @ y.T / temperature
    targets = torch.arange(len(x), device=x.device)
    loss = F.cross_entropy(_masked(logits, false_negatives(y_keys)), targets)
    if symmetric:
        loss = (loss + F.cross_entropy(_masked(logits.T, false_negatives(x_keys)), targets)) / 2
    return loss


def soft_cross_entropy(logits: torch.Tensor, targets: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-row ``-Σ_j targets_ij · log_softmax(logits)_ij``, over the columns ``mask`` leaves in."""
    log_probs = F.log_softmax(_masked(logits, mask), dim=-1)
    if mask is not None:
        log_probs = log_probs.masked_fill(mask, 0.0)  # their targets are 0: no 0 · (-inf)
    return -(targets * log_probs).sum(-1)


def soft_contrastive(x: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor = 1.0, *,
                     x_keys: torch.Tensor | None = None, y_keys: torch.Tensor | None = None) -> torch.Tensor:
    """LLMEmb's soft-target loss: logits ``x yᵀ / τ``, targets ``softmax(τ·(x xᵀ + y yᵀ)/2)``, symmetric CE; with
    keys, the false negatives are left out of both the logits' and the targets' softmax."""
    _check(x, y, x_keys, y_keys)
    logits = x @ y.T / temperature
    similarity = (x @ x.T + y @ y.T) / 2 * temperature
    forward_mask, backward_mask = false_negatives(y_keys), false_negatives(x_keys)  # both symmetric
    forward = soft_cross_entropy(logits, F.softmax(_masked(similarity, forward_mask), dim=-1), forward_mask)
    backward = soft_cross_entropy(logits.T, F.softmax(_masked(similarity, backward_mask), dim=-1).T, backward_mask)
    return ((forward + backward) / 2).mean()


def contrastive_loss(name: ContrastiveName, x: torch.Tensor, y: torch.Tensor, temperature: float | torch.Tensor, *,
                     x_keys: torch.Tensor | None = None, y_keys: torch.Tensor | None = None) -> torch.Tensor:
    if name == "infonce":
        return info_nce(x, y, temperature, x_keys=x_keys, y_keys=y_keys)
    if name == "soft":
        return soft_contrastive(x, y, temperature, x_keys=x_keys, y_keys=y_keys)
    raise ValueError(f"unknown contrastive loss '{name}' (valid: infonce, soft)")


def _check(x: torch.Tensor, y: torch.Tensor, x_keys: torch.Tensor | None = None,
           y_keys: torch.Tensor | None = None) -> None:
    if x.ndim != 2 or x.shape != y.shape:
        raise ValueError(f"contrastive losses need two (B, d) batches of the same shape, got {tuple(x.shape)} and {tuple(y.shape)}")
    for name, keys in (("x_keys", x_keys), ("y_keys", y_keys)):
        if keys is not None and tuple(keys.shape) != (len(x),):
            raise ValueError(f"{name} needs one key per row ({len(x)}), got shape {tuple(keys.shape)}")
