"""LANE's alignment: a multi-head cross-attention from the sequence states to the user's preferences.

Per position t (queries ``Q`` = the backbone's states, keys/values ``K_u`` = the user's preference
phrases encoded by the sentence encoder)::

    A_h = softmax((Q W_q^h)(K_u W_k^h)^T / sqrt(d_h))          (L, P) per head
    Z   = LN(concat_h(A_h K_u W_v^h) W_o + Q)
    out = LN(Z + FFN(Z))                                        point-wise FFN

Written out rather than with ``nn.MultiheadAttention`` so the per-head weights the output is made of
are the ones kept: :attr:`PreferenceAlignment.last_weights` is the last position's weights averaged
over heads (what an explanation shows). Users without preferences (empty training history, unknown
users) keep the backbone's states unchanged.
"""

from __future__ import annotations

import math

import numpy as np
import torch
from torch import nn

from lucidrec.embeddings.base import StateHook


class PointWiseFeedForward(nn.Module):
    def __init__(self, dim: int, dropout: float):
        super().__init__()
        self.net = nn.Sequential(nn.Linear(dim, dim), nn.Dropout(dropout), nn.ReLU(), nn.Linear(dim, dim),
                                 nn.Dropout(dropout))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class PreferenceAlignment(StateHook):
    """``preferences`` (n_users, P, d_enc) and ``mask`` (n_users, P): each user's encoded phrases."""

    def __init__(self, dim: int, preferences: np.ndarray, mask: np.ndarray, heads: int = 4, dropout: float = 0.5):
        super().__init__()
        preferences = np.asarray(preferences, np.float32)
        if dim % heads:
            raise ValueError(f"the hidden size {dim} is not divisible by {heads} heads")
        if preferences.ndim != 3 or preferences.shape[:2] != np.shape(mask):
            raise ValueError(f"preferences {preferences.shape} and mask {np.shape(mask)} do not match")
        self.dim, self.heads, self.head_dim = dim, heads, dim // heads
        self.query = nn.Linear(dim, dim)
        self.key = nn.Linear(preferences.shape[2], dim)
        self.value = nn.Linear(preferences.shape[2], dim)
        self.out = nn.Linear(dim, dim)
        self.attention_dropout = nn.Dropout(dropout)
        self.norm_attention = nn.LayerNorm(dim)
        self.ffn = PointWiseFeedForward(dim, dropout)
        self.norm_out = nn.LayerNorm(dim)
        # Not persistent: a run rebuilds them from its lane/ folder, so checkpoints stay small.
        self.register_buffer("preferences", torch.from_numpy(preferences), persistent=False)
        self.register_buffer("mask", torch.as_tensor(np.asarray(mask, bool)), persistent=False)
        #: (B, P) last position's attention weights averaged over heads, of the last forward pass
        self.last_weights: torch.Tensor | None = None
        #: (B, heads, P) the same per head (the average above is taken over these)
        self.last_head_weights: torch.Tensor | None = None
        #: (B,) which rows of the last forward pass had preferences (the others passed through)
        self.last_aligned: torch.Tensor | None = None

    @property
    def n_users(self) -> int:
        return self.preferences.shape[0]

    def _rows(self, users, batch: int) -> tuple[torch.Tensor, torch.Tensor]:
        if users is None:
            return torch.zeros(batch, dtype=torch.long), torch.zeros(batch, dtype=torch.bool)
        users = torch.as_tensor(np.asarray(users) if not isinstance(users, torch.Tensor) else users).long().reshape(-1)
        known = (users >= 0) & (users < self.n_users)
        index = torch.where(known, users, torch.zeros_like(users))
        return index, known & self.mask[index].any(dim=1)

    def forward(self, states: torch.Tensor, seqs: torch.Tensor, users=None) -> torch.Tensor:
        batch, length, _ = states.shape
        index, aligned = self._rows(users, batch)
        keys_in, mask = self.preferences[index].to(states.dtype), self.mask[index] & aligned[:, None]
        split = lambda x: x.view(batch, -1, self.heads, self.head_dim).transpose(1, 2)  # noqa: E731
        q, k, v = split(self.query(states)), split(self.key(keys_in)), split(self.value(keys_in))
        logits = q @ k.transpose(-1, -2) / math.sqrt(self.head_dim)  # (B, H, L, P)
        # Rows without preferences get a dummy all-visible mask (their output is discarded below).
        visible = torch.where(aligned[:, None], mask, torch.ones_like(mask))
        logits = logits.masked_fill(~visible[:, None, None, :], float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        attended = (self.attention_dropout(weights) @ v).transpose(1, 2).reshape(batch, length, self.dim)
        z = self.norm_attention(self.out(attended) + states)
        out = self.norm_out(z + self.ffn(z))
        last = weights[:, :, -1, :].detach() * aligned[:, None, None]
        self.last_head_weights, self.last_weights, self.last_aligned = last, last.mean(dim=1), aligned
        return torch.where(aligned[:, None, None], out, states)

    def without_preference(self, user: int, preference: int):
        """A context in which ``user``'s preference ``preference`` is hidden (the deletion test)."""
        return _Hidden(self, user, preference)


class _Hidden:
    def __init__(self, hook: PreferenceAlignment, user: int, preference: int):
        self.hook, self.user, self.preference = hook, user, preference

    def __enter__(self):
        self.saved = bool(self.hook.mask[self.user, self.preference])
        self.hook.mask[self.user, self.preference] = False
        return self.hook

    def __exit__(self, *exc):
        self.hook.mask[self.user, self.preference] = self.saved
        return False
