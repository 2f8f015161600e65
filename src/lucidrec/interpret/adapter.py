"""The only trainable part: recommender states -> soft tokens in the LM's embedding space.

``pool="last"`` is the paper's adapter: one Linear(d_state -> d_lm) (+ bias) per state. ``tokens`` > 1
widens it to Linear(d_state -> tokens x d_lm): each state becomes ``tokens`` soft tokens. ``hidden`` puts
one GELU layer of that width before the output map (an MLP instead of the paper's single Linear).
``pool="conv"`` is the released code's variant: a learned weighted sum (+ bias) of the last
``window`` positions' states (their Conv2d(1, 1, (10, 1))), then the same Linear. It starts as
``last`` (weight 1 on the final position) so both variants begin from the same function.
"""

from __future__ import annotations

import torch
from torch import nn


class StateAdapter(nn.Module):
    def __init__(self, d_state: int, d_lm: int, pool: str = "last", window: int = 10, tokens: int = 1,
                 hidden: int | None = None):
        super().__init__()
        if pool not in ("last", "conv"):
            raise ValueError(f"pool must be 'last' or 'conv', not {pool!r}")
        if tokens < 1:
            raise ValueError(f"tokens must be at least 1, not {tokens}")
        self.d_state, self.d_lm, self.pool, self.window, self.tokens = d_state, d_lm, pool, window, tokens
        self.hidden = hidden
        self.features = nn.Sequential(nn.Linear(d_state, hidden), nn.GELU()) if hidden else nn.Identity()
        self.project = nn.Linear(hidden or d_state, tokens * d_lm)
        if pool == "conv":
            weights = torch.zeros(window)
            weights[-1] = 1.0
            self.position_weights = nn.Parameter(weights)
            self.position_bias = nn.Parameter(torch.zeros(()))

    @property
    def positions(self) -> int:
        """How many trailing positions of a state sequence the adapter reads."""
        return self.window if self.pool == "conv" else 1

    def pooled(self, states: torch.Tensor) -> torch.Tensor:
        """(..., positions, d_state) -> (..., d_state): what the linear map reads."""
        if states.shape[-2] != self.positions or states.shape[-1] != self.d_state:
            raise ValueError(f"states must end with shape ({self.positions}, {self.d_state}), got {tuple(states.shape)}")
        if self.pool == "last":
            return states[..., -1, :]
        return torch.einsum("...wd,w->...d", states, self.position_weights) + self.position_bias

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(..., positions, d_state) -> (..., tokens, d_lm)."""
        out = self.project(self.features(self.pooled(states)))
        return out.reshape(*out.shape[:-1], self.tokens, self.d_lm)
