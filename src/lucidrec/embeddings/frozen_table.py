"""A frozen external item matrix (e.g. text-encoder vectors) behind a small trainable adapter.

The matrix is never trained; the adapter ``Linear(D -> hidden) -> Linear(hidden -> dim)`` is (no
non-linearity in between, as in LLMEmb's RAT adapter; ``activation="gelu"`` puts one there, outside
the paper, so items whose text vectors are close can still be mapped far apart). Padding and
special-token rows of the frozen matrix are zeros, so only the adapter's bias gives them a vector.

``scaling`` says how the rows enter the adapter. Sentence encoders give unit-norm rows, so each
coordinate is about 1/sqrt(D) (0.05 for MiniLM), and untuned MiniLM item rows put ~40% of their
squared norm along the mean row; Adam, which moves every weight by about the learning rate per step,
needs many epochs to scale such inputs up (measured: docs/benchmarks.md). ``centered`` removes
the mean item row (what the PCA of LLMEmb's code does as a side effect); ``standardized`` also
multiplies the table by one factor so its coordinates have unit mean variance, about the scale of
the RMS-normalised LLaMA states in the paper's table. The relative variances of the coordinates are
kept (no whitening).

``residual_id`` adds a trainable id vector per item to the adapter's output (a text + id hybrid, as in
LLM-ESR or UniSRec's fine-tuning with ids; not part of LLMEmb): a linear map of a text vector cannot hold
what only the interaction data says about an item, the id vector can.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field
from torch import nn

from lucidrec.config import StrictConfig
from lucidrec.embeddings.base import EMBEDDINGS, ItemEmbedding
from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.errors import DataFormatError


TableScaling = Literal["raw", "centered", "standardized"]
AdapterActivation = Literal["none", "gelu"]


def scale_table(matrix: torch.Tensor, scaling: TableScaling) -> torch.Tensor:
    """Row 0 (padding) and all-zero rows (items the matrix file lacks) stay zero: after centering,
    zero is the average item, which is what "no information" should map to."""
    if scaling == "raw":
        return matrix
    if scaling not in ("centered", "standardized"):
        raise ValueError(f"unknown table scaling {scaling!r}; valid: raw, centered, standardized")
    known = matrix.abs().sum(dim=1) > 0
    if not known.any():
        return matrix
    out = matrix.clone()
    out[known] -= out[known].mean(dim=0)
    if scaling == "standardized":
        out[known] /= out[known].pow(2).mean().sqrt().clamp_min(1e-12)
    return out


class FrozenTableConfig(StrictConfig):
    path: str = Field(..., description=".npy matrix with one row per item index (row 0 = padding), or N rows with a sidecar JSON listing item ids")
    hidden: int | None = Field(None, description="adapter width; default (D + dim) // 2")
    dropout: float = Field(0.0, ge=0, lt=1)
    activation: AdapterActivation = Field("none", description="between the adapter's two layers: none (linear, as "
                                          "LLMEmb) or gelu")
    normalize: bool = Field(False, description="L2-normalise the frozen rows before the adapter")
    scaling: TableScaling = Field("raw", description="raw: rows as given; centered: minus the mean item row; "
                                    "standardized: centered, then scaled to unit mean coordinate variance")
    residual_id: bool = Field(False, description="add a trainable id vector per item (text + id hybrid)")


def load_item_matrix(path: Path, item_ids: np.ndarray | None) -> np.ndarray:
    """Read a matrix aligned to the run's item vocabulary.

    With the ``.json`` sidecar that ``lucidrec embed`` writes (see :mod:`lucidrec.lm.item_vectors`),
    rows are re-ordered to the vocabulary by original id, so a matrix made with other filters still
    fits; ids missing from the file become zero rows. A bare ``.npy`` must already have
    ``n_items + 1`` rows in vocabulary order.
    """
    from lucidrec.lm.item_vectors import load_item_matrix as load_with_sidecar

    path = Path(path)
    if not path.with_suffix(".json").is_file() or item_ids is None:
        if not path.is_file():
            raise DataFormatError(path, "item matrix not found")
        matrix = np.load(path).astype(np.float32)
        if item_ids is not None and len(matrix) != len(item_ids):
            raise DataFormatError(path, f"has {len(matrix)} rows but the data has {len(item_ids)} item indices "
                                  "(incl. padding); add the .json sidecar written by `lucidrec embed`")
        return matrix
    stored = load_with_sidecar(path)
    position = {str(item): row for row, item in enumerate(stored.info.item_ids)}
    out = np.zeros((len(item_ids), stored.vectors.shape[1]), dtype=np.float32)
    for index, item in enumerate(item_ids[1:], start=1):
        row = position.get(str(item))
        if row is not None:
            out[index] = stored.vectors[row]
    return out


@EMBEDDINGS.register("frozen")
class FrozenTableEmbedding(ItemEmbedding):
    config_class = FrozenTableConfig

    def __init__(self, matrix: np.ndarray | torch.Tensor, dim: int, extra_tokens: int = 0, hidden: int | None = None,
                 dropout: float = 0.0, normalize: bool = False, residual_id: bool = False,
                 scaling: TableScaling = "raw", activation: AdapterActivation = "none"):
        matrix = torch.as_tensor(np.asarray(matrix), dtype=torch.float32)
        super().__init__(matrix.shape[0] - 1, dim, extra_tokens)
        if normalize:
            matrix = torch.nn.functional.normalize(matrix, dim=1)
        matrix = scale_table(matrix, scaling)
        matrix = torch.cat([matrix, torch.zeros(extra_tokens, matrix.shape[1])])
        matrix[0] = 0
        self.register_buffer("frozen", matrix)
        width = hidden or (matrix.shape[1] + dim) // 2
        between = [nn.GELU()] if activation == "gelu" else []
        self.adapter = nn.Sequential(nn.Linear(matrix.shape[1], width), *between, nn.Dropout(dropout), nn.Linear(width, dim))
        self.residual = IdEmbedding(self.n_items, dim, extra_tokens) if residual_id else None

    @classmethod
    def build(cls, config: FrozenTableConfig, n_items, dim, extra_tokens, context=None):
        item_ids = context.data.item_ids if context is not None else None
        matrix = load_item_matrix(Path(config.path), item_ids)
        if matrix.shape[0] != n_items + 1:
            raise DataFormatError(config.path, f"has {matrix.shape[0]} rows, expected {n_items + 1}")
        return cls(matrix, dim, extra_tokens, config.hidden, config.dropout, config.normalize, config.residual_id,
                   scaling=config.scaling, activation=config.activation)

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.adapter(self.frozen[item_ids])
        return vectors if self.residual is None else vectors + self.residual(item_ids)

    def table(self) -> torch.Tensor:
        return self(torch.arange(self.n_items + 1, device=self.frozen.device))
