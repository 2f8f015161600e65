"""The only trainable part: recommender states -> soft tokens in the LM's embedding space.

``pool="last"`` is the paper's adapter: one Linear(d_state -> d_lm) (+ bias) per state.
``pool="conv"`` is the released code's variant: a learned weighted sum (+ bias) of the last
``window`` positions' states (their Conv2d(1, 1, (10, 1))), then the same Linear. It starts as
``last`` (weight 1 on the final position) so both variants begin from the same function.
"""

from __future__ import annotations

import torch
from torch import nn


class StateAdapter(nn.Module):
    def __init__(self, d_state: int, d_lm: int, pool: str = "last", window: int = 10):
        super().__init__()
        if pool not in ("last", "conv"):
            raise ValueError(f"pool must be 'last' or 'conv', not {pool!r}")
        self.d_state, self.d_lm, self.pool, self.window = d_state, d_lm, pool, window
        self.project = nn.Linear(d_state, d_lm)
        if pool == "conv":
            weights = torch.zeros(window)
            weights[-1] = 1.0
            self.position_weights = nn.Parameter(weights)
            self.position_bias = nn.Parameter(torch.zeros(()))

    @property
    def positions(self) -> int:
        """How many trailing positions of a state sequence the adapter reads."""
        return self.window if self.pool == "conv" else 1

    def forward(self, states: torch.Tensor) -> torch.Tensor:
        """(..., positions, d_state) -> (..., d_lm)."""
        if states.shape[-2] != self.positions or states.shape[-1] != self.d_state:
            raise ValueError(f"states must end with shape ({self.positions}, {self.d_state}), got {tuple(states.shape)}")
        if self.pool == "last":
            pooled = states[..., -1, :]
        else:
            pooled = torch.einsum("...wd,w->...d", states, self.position_weights) + self.position_bias
        return self.project(pooled)
