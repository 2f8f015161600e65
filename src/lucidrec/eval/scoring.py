"""What the evaluator needs from any recommender: a user state, and scores for slices of the catalog.

Splitting "compute the user's state once" from "score items start..stop" lets the evaluator stream
over the catalog in chunks with bounded memory, for any model: trained backbones
(:class:`~lucidrec.models.scoring.DotProductScorer`), count baselines or an LLM-based scorer.
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
