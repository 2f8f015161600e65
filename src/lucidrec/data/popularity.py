"""Item popularity and user history-length groups, for metrics broken down by group.

Popularity is always counted on the *training* part of a split, so group membership never uses
the targets being evaluated.
"""

from __future__ import annotations

import numpy as np


def head_items(counts: np.ndarray, head_share: float = 0.2) -> np.ndarray:
    """Boolean mask over item indices: the ``head_share`` most popular items (ties broken by index).

    The rest, including items never seen in training, is the tail. Index 0 (padding) is never head.
    """
    n_items = len(counts) - 1
    n_head = int(np.ceil(head_share * n_items))
    order = np.lexsort((np.arange(1, n_items + 1), -counts[1:])) + 1
    mask = np.zeros(len(counts), dtype=bool)
    mask[order[:n_head]] = True
    return mask


def popularity_bins(counts: np.ndarray, n_bins: int = 5) -> np.ndarray:
    """Bin per item index, 1 (least popular fifth of items) .. n_bins (most popular); 0 for padding."""
    n_items = len(counts) - 1
    order = np.lexsort((np.arange(1, n_items + 1), counts[1:])) + 1  # ascending popularity
    bins = np.zeros(len(counts), dtype=np.int64)
    bins[order] = np.arange(n_items) * n_bins // max(n_items, 1) + 1
    return bins


def length_bins(lengths: np.ndarray, n_bins: int = 4) -> np.ndarray:
    """Quantile bin per user by history length, 1 (shortest) .. n_bins; equal lengths share a bin."""
    if len(lengths) == 0:
        return np.zeros(0, dtype=np.int64)
    edges = np.quantile(lengths, np.linspace(0, 1, n_bins + 1)[1:-1])
    return np.searchsorted(edges, lengths, side="right") + 1
