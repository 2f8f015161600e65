"""Score normalisation and the PCA reduction of a base embedding table.

Normalisation (documented choice): each attribute is z-scored over the items that have a score,
``z = (s - mean_k) / std_k`` (population std; an attribute with zero spread gets std 1). Scorers
differ in range and offset (encoder: cosine differences around 0; LLM: expected values on 1..9
that small models bunch around 3), so only the ordering and spread *within* an attribute are
kept, and every attribute gets the same weight. Items without a score (no text, or the LLM never
answered) get z = 0, i.e. the attribute mean, and are flagged and counted.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Normalised:
    z: np.ndarray  # (n, m) float32
    mean: np.ndarray  # (m,)
    std: np.ndarray  # (m,)
    missing: np.ndarray  # (n,) bool: filled with the attribute mean

    @property
    def n_missing(self) -> int:
        return int(self.missing.sum())


def zscore(raw: np.ndarray, missing: np.ndarray | None = None) -> Normalised:
    """Per-attribute z-scores over the rows that have a score; other rows become 0 (the mean)."""
    raw = np.asarray(raw, dtype=np.float64)
    missing = np.isnan(raw).any(axis=1) | (np.zeros(len(raw), bool) if missing is None else np.asarray(missing, bool))
    known = raw[~missing]
    if len(known) == 0:
        mean, std = np.zeros(raw.shape[1]), np.ones(raw.shape[1])
    else:
        mean = known.mean(axis=0)
        std = known.std(axis=0)
        std = np.where(std > 1e-12, std, 1.0)
    z = np.where(missing[:, None], 0.0, (np.nan_to_num(raw) - mean) / std)
    return Normalised(z.astype(np.float32), mean, std, missing)


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
