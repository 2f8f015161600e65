"""Score normalisation: per-attribute z-scores of raw attribute scores.

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
