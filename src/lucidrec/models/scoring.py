"""The scoring rule of every sequential backbone: user vectors · item table rows.

:class:`DotProductScorer` implements the evaluator's :class:`~lucidrec.eval.scoring.Scorer` protocol.
"""

from __future__ import annotations

import numpy as np
import torch

from lucidrec.data.sequences import Ragged


class DotProductScorer:
    """Scores are user vectors · item table rows: the scoring rule of every sequential backbone here."""

    def __init__(self, item_table: torch.Tensor, user_vectors):
        self.item_table = item_table
        self.n_items = item_table.shape[0] - 1
        self._user_vectors = user_vectors  # callable (history, users) -> (B, d) tensor

    @torch.no_grad()
    def user_state(self, history: Ragged, users: np.ndarray) -> torch.Tensor:
        return self._user_vectors(history, users)

    @torch.no_grad()
    def score(self, state: torch.Tensor, start: int, stop: int) -> torch.Tensor:
        return state @ self.item_table[start:stop].T

    @torch.no_grad()
    def score_items(self, state: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        return torch.einsum("bd,bmd->bm", state, self.item_table[items])
