"""Helpers for probability-weighted answers over a fixed set of choices (e.g. "1".."10")."""

from __future__ import annotations

from typing import Sequence

import numpy as np


def choice_values(choices: Sequence | dict) -> tuple[list[str], np.ndarray]:
    """Labels and numeric values: ``{"low": 0, "high": 1}``, ``range(1, 11)`` or numeric strings."""
    if isinstance(choices, dict):
        labels = [str(k) for k in choices]
        values = np.asarray([float(v) for v in choices.values()])
    else:
        labels = [str(c) for c in choices]
        try:
            values = np.asarray([float(c) for c in choices])
        except (TypeError, ValueError):
            raise ValueError("non-numeric choices need explicit values: pass a dict {label: value}") from None
    return labels, values


def expected_value(probs: np.ndarray, values: Sequence[float]) -> np.ndarray:
    """Row-wise sum of p * value; rows that failed (NaN) stay NaN."""
    probs = np.asarray(probs, dtype=np.float64)
    values = np.asarray(values, dtype=np.float64)
    if probs.shape[-1] != len(values):
        raise ValueError(f"{probs.shape[-1]} probabilities per row but {len(values)} values")
    return probs @ values


def renormalise(logprobs: np.ndarray) -> tuple[np.ndarray, float]:
    """Softmax over the choices' log-probabilities, and the total probability they held."""
    logprobs = np.asarray(logprobs, dtype=np.float64)
    top = np.max(logprobs)
    if not np.isfinite(top):
        return np.full(len(logprobs), np.nan), 0.0
    weights = np.exp(logprobs - top)
    return weights / weights.sum(), float(np.exp(top) * weights.sum())
