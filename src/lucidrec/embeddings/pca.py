"""The one PCA of the project: item tables reduced to fewer dimensions (GER's base block, LLMEmb's ``pca_dim``).

Centred, by SVD in float64, with a deterministic sign (the largest-magnitude entry of each component is
positive), so equal tables always give equal reductions. Row 0 of an item table is padding: it is left
out of the fit and stays zero.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class PCA:
    mean: np.ndarray  # (d,)
    components: np.ndarray  # (k, d), rows orthonormal, by decreasing variance
    explained: np.ndarray  # (k,) share of the variance each component explains

    def transform(self, x: np.ndarray) -> np.ndarray:
        return ((np.asarray(x, dtype=np.float64) - self.mean) @ self.components.T).astype(np.float32)


def fit_pca(table: np.ndarray, k: int) -> PCA:
    """PCA of the rows of ``table`` (centred; SVD), keeping ``k`` components (zero-padded if rank < k)."""
    x = np.asarray(table, dtype=np.float64)
    if k < 1:
        raise ValueError(f"need at least one PCA component, got {k}")
    mean = x.mean(axis=0)
    _, s, vt = np.linalg.svd(x - mean, full_matrices=False)
    # A deterministic sign: the largest-magnitude entry of each component is positive.
    signs = np.sign(vt[np.arange(len(vt)), np.abs(vt).argmax(axis=1)])
    vt = vt * np.where(signs == 0, 1, signs)[:, None]
    variance = s**2
    explained = variance / variance.sum() if variance.sum() > 0 else np.zeros_like(variance)
    if k > len(vt):
        vt = np.vstack([vt, np.zeros((k - len(vt), x.shape[1]))])
        explained = np.concatenate([explained, np.zeros(k - len(explained))])
    return PCA(mean, vt[:k], explained[:k])


def reduce_table(base: np.ndarray, k: int) -> tuple[np.ndarray, PCA]:
    """Rows ``1..n`` of a base item table (row 0 = padding) reduced to ``k`` dims; row 0 stays zero."""
    pca = fit_pca(base[1:], k)
    out = np.zeros((len(base), k), dtype=np.float32)
    out[1:] = pca.transform(base[1:])
    return out, pca
