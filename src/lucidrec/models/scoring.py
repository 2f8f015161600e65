"""What the evaluator needs from any recommender: a user state, and scores for slices of the catalog.

Splitting "compute the user's state once" from "score items start..stop" lets the evaluator stream
over the catalog in chunks with bounded memory, for any model: trained backbones, count baselines
or an LLM-based scorer.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

import numpy as np
import torch

from lucidrec.data.sequences import Ragged


@runtime_checkable
class Scorer(Protocol):
    n_items: int

    def user_state(self, history: Ragged, users: np.ndarray) -> Any:
        """Whatever the model needs per user of this batch (e.g. the last hidden state)."""

    def score(self, state: Any, start: int, stop: int) -> torch.Tensor:
        """Scores of item indices ``start..stop-1`` for every user of the batch: (B, stop - start).

        Must be a fresh tensor (not a view of model state): the evaluator masks it in place.
        """

    def score_items(self, state: Any, items: torch.Tensor) -> torch.Tensor:
        """Scores of the given item indices per user: (B, M) for ``items`` of shape (B, M)."""


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
