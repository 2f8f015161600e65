"""Baselines that need no training: every trained model must beat these floors.

- ``MostPopular``: items ranked by their number of training interactions.
- ``LastItemCooccurrence``: items ranked by how often they directly followed the user's last item
  in the training sequences; popularity (scaled below 1) breaks ties, so users whose last item was
  never followed still get the popular ranking.
"""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.data.split import Split
from lucidrec.errors import UnknownNameError


class MostPopular:
    name = "pop"

    def fit(self, split: Split) -> "MostPopular":
        self.n_items = split.n_items
        self.counts_ = torch.as_tensor(split.item_counts(), dtype=torch.float32)
        return self

    def user_state(self, history: Ragged, users: np.ndarray) -> int:
        return len(users)

    def score(self, state: int, start: int, stop: int) -> torch.Tensor:
        return self.counts_[start:stop].repeat(state, 1)

    def score_items(self, state: int, items: torch.Tensor) -> torch.Tensor:
        return self.counts_[items]


class LastItemCooccurrence:
    name = "cooc"

    def fit(self, split: Split) -> "LastItemCooccurrence":
        self.n_items = n = split.n_items
        train = split.train
        positions = train.positions()
        follows = positions > 0  # a value with a predecessor in its own row
        nxt = train.values[follows]
        prev = train.values[np.flatnonzero(follows) - 1]
        self.transitions_ = sp.csr_matrix(
            (np.ones(len(nxt), dtype=np.float32), (prev, nxt)), shape=(n + 1, n + 1)
        )
        self.transitions_.sum_duplicates()
        counts = split.item_counts().astype(np.float64)
        self.tie_break_ = torch.as_tensor(counts / (counts.max() + 1.0), dtype=torch.float32)
        return self

    def user_state(self, history: Ragged, users: np.ndarray) -> np.ndarray:
        lengths = history.lengths()
        last = np.zeros(len(lengths), dtype=np.int64)
        has = lengths > 0
        last[has] = history.values[history.offsets[1:][has] - 1]
        return last

    def score(self, state: np.ndarray, start: int, stop: int) -> torch.Tensor:
        block = self.transitions_[state][:, start:stop].toarray()
        return torch.as_tensor(block) + self.tie_break_[start:stop]

    def score_items(self, state: np.ndarray, items: torch.Tensor) -> torch.Tensor:
        rows = np.repeat(state, items.shape[1])
        values = np.asarray(self.transitions_[rows, items.reshape(-1).numpy().copy()]).reshape(items.shape)
        return torch.as_tensor(values, dtype=torch.float32) + self.tie_break_[items]


BASELINES = {"pop": MostPopular, "cooc": LastItemCooccurrence}


def make_baseline(name: str):
    if name not in BASELINES:
        raise UnknownNameError("baseline", name, list(BASELINES))
    return BASELINES[name]()
