"""Whitening of a text table: the item rows get zero mean and identity covariance (fit on the catalog).

Raw sentence-encoder rows are highly anisotropic (most of their variance lies along a few directions,
mean cosine > 0.8 on the Amazon catalogs), which a small adapter has to undo before it can tell items
apart. ``pca`` maps the centred rows onto the principal axes and divides each by its standard
deviation; ``zca`` rotates back afterwards, so the whitened rows stay as close as possible to the
originals. Both give identity covariance on the rows they are fit on.

The covariance of ``n`` rows has rank at most ``n - 1``: with no more items than dimensions it cannot
be inverted. That is an error unless ``shrinkage`` λ > 0, which whitens with
``(1 - λ)·Σ + λ·(trace(Σ) / D)·I`` instead (the covariance of the fit rows is then no longer exactly
the identity, but every direction stays finite).
"""

from __future__ import annotations

from typing import Literal

import torch

from lucidrec.config import ConfigError

WhiteningMethod = Literal["pca", "zca"]

#: Eigenvalues below this share of the largest count as zero (a singular covariance).
RANK_TOLERANCE = 1e-9


def whitening_transform(rows: torch.Tensor, method: WhiteningMethod, shrinkage: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """``(mean, W)`` such that ``(rows - mean) @ W`` has identity covariance (with ``shrinkage`` 0)."""
    if method not in ("pca", "zca"):
        raise ConfigError(f"unknown whitening {method!r}; valid: pca, zca")
    if not 0 <= shrinkage <= 1:
        raise ConfigError(f"whitening shrinkage must be in [0, 1], got {shrinkage}")
    n, dim = rows.shape
    if n < 2:
        raise ConfigError(f"whitening needs at least two item rows with text, got {n}")
    x = rows.double()
    mean = x.mean(dim=0)
    centred = x - mean
    covariance = centred.T @ centred / n
    if shrinkage:
        covariance = (1 - shrinkage) * covariance + shrinkage * covariance.trace() / dim * torch.eye(dim, dtype=x.dtype)
    values, vectors = torch.linalg.eigh(covariance)
    if values[0] <= RANK_TOLERANCE * values[-1].clamp_min(1e-300):
        reason = (f"the catalog has {n} item rows for {dim} dimensions" if n <= dim
                  else f"the covariance of the {n} item rows is singular")
        raise ConfigError(f"cannot whiten the text table: {reason}; set a whitening shrinkage > 0 (e.g. "
                          "embedding.whitening_shrinkage=0.1, on llmemb embedding.table.whitening_shrinkage) "
                          "or reduce the table's width first")
    transform = vectors / values.sqrt()
    if method == "zca":
        transform = transform @ vectors.T
    return mean.to(rows.dtype), transform.to(rows.dtype)


def whiten_rows(matrix: torch.Tensor, fit_rows: torch.Tensor, method: WhiteningMethod, shrinkage: float = 0.0) -> torch.Tensor:
    """``matrix`` with the rows selected by the boolean ``fit_rows`` whitened (fit on those rows alone);
    the other rows (padding) stay zero, the whitened average item."""
    mean, transform = whitening_transform(matrix[fit_rows], method, shrinkage)
    out = torch.zeros(matrix.shape[0], transform.shape[1], dtype=matrix.dtype)
    out[fit_rows] = (matrix[fit_rows] - mean) @ transform
    return out
