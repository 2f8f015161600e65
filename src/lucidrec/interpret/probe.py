"""The decoder-free baseline: a linear map from states to sentence-encoder title vectors, nearest title.

Ridge regression in closed form (numpy; a fixed penalty, never tuned on held-out users), then
cosine similarity against every title vector. Residual features are the before and after states
side by side; recovery targets are the mean vector of the titles to recover.
"""

from __future__ import annotations

import numpy as np


class LinearProbe:
    def __init__(self, penalty: float = 1.0):
        self.penalty = penalty
        self.weights: np.ndarray | None = None

    @staticmethod
    def _with_bias(x: np.ndarray) -> np.ndarray:
        return np.hstack([x, np.ones((len(x), 1), dtype=x.dtype)])

    def fit(self, features: np.ndarray, targets: np.ndarray) -> "LinearProbe":
        x = self._with_bias(np.asarray(features, dtype=np.float64))
        gram = x.T @ x + self.penalty * np.eye(x.shape[1])
        gram[-1, -1] -= self.penalty  # the bias is not penalised
        self.weights = np.linalg.solve(gram, x.T @ np.asarray(targets, dtype=np.float64))
        return self

    def predict(self, features: np.ndarray) -> np.ndarray:
        if self.weights is None:
            raise RuntimeError("fit the probe first")
        return self._with_bias(np.asarray(features, dtype=np.float64)) @ self.weights

    def similarities(self, features: np.ndarray, title_vectors: np.ndarray) -> np.ndarray:
        """(n, K) cosine similarity of each prediction with each title vector."""
        predicted = self.predict(features)
        predicted /= np.linalg.norm(predicted, axis=1, keepdims=True) + 1e-12
        titles = title_vectors / (np.linalg.norm(title_vectors, axis=1, keepdims=True) + 1e-12)
        return predicted @ titles.T


def probe_features(states: np.ndarray) -> np.ndarray:
    """(N, slots, positions, d) -> (N, slots * d): the last position's state of every slot, side by side."""
    return np.asarray(states)[:, :, -1, :].reshape(len(states), -1)
