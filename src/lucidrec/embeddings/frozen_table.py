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
kept; ``pca_whitened`` / ``zca_whitened`` also equalise them (identity covariance over the catalog,
:mod:`lucidrec.embeddings.whitening`).

Items without text (absent from the matrix file, or encoded from the ``item <id>`` fallback prompt)
get an explicit fallback row, the mean row of the items with text (after centering: zero, the average
item); how many is counted in ``info`` and printed.

``residual_id`` adds a trainable id vector per item to the adapter's output (a text + id hybrid, as in
LLM-ESR or UniSRec's fine-tuning with ids; not part of LLMEmb): a linear map of a text vector cannot hold
what only the interaction data says about an item, the id vector can. Its initialisation, dropout and
weight decay, and the zero id part of items never trained on, are in :mod:`lucidrec.embeddings.id_part`.
``--embedding hybrid`` is this table with the id part on and initialised at zero.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from lucidrec.config import ConfigError, StrictConfig
from lucidrec.embeddings.base import EMBEDDINGS, ItemEmbedding
from lucidrec.embeddings.id_part import IdInit, IdPart
from lucidrec.embeddings.whitening import whiten_rows
from lucidrec.errors import DataFormatError
from lucidrec.files import read_json


TableScaling = Literal["raw", "centered", "standardized", "pca_whitened", "zca_whitened"]
AdapterActivation = Literal["none", "gelu"]
SCALINGS = ("raw", "centered", "standardized", "pca_whitened", "zca_whitened")


def scale_table(matrix: torch.Tensor, scaling: TableScaling, shrinkage: float = 0.0) -> torch.Tensor:
    """Row 0 (padding) and all-zero rows stay zero: after centering, zero is the average item, which is
    what "no information" should map to. ``shrinkage``: of the covariance, for the whitened scalings."""
    if scaling == "raw":
        return matrix
    if scaling not in SCALINGS:
        raise ValueError(f"unknown table scaling {scaling!r}; valid: {', '.join(SCALINGS)}")
    known = matrix.abs().sum(dim=1) > 0
    if not known.any():
        return matrix
    if scaling.endswith("_whitened"):
        return whiten_rows(matrix, known, scaling.removesuffix("_whitened"), shrinkage)
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
                                    "standardized: centered, then scaled to unit mean coordinate variance; "
                                    "pca_whitened / zca_whitened: identity covariance over the catalog")
    whitening_shrinkage: float = Field(0.0, ge=0, le=1, description="whitened scalings: shrink the covariance "
                                       "towards a multiple of the identity (needed when the catalog has no more "
                                       "items than the table has dimensions)")
    residual_id: bool = Field(False, description="add a trainable id vector per item (text + id hybrid)")
    id_init: IdInit = Field("random", description="id part's start: random (std 0.02), zero, or text (the "
                            "adapter's initial output for the item's text)")
    id_dropout: float = Field(0.0, ge=0, lt=1, description="training only: drop each item's whole id vector with "
                              "this probability, so the text part must carry it alone")
    id_weight_decay: float = Field(0.0, ge=0, description="L2 penalty weight_decay/2·||id||² on the id part "
                                   "(added to the loss, times train.aux_weight)")

    @model_validator(mode="after")
    def _id_options_need_the_id_part(self):
        check_id_options(self, "residual_id")
        return self


def check_id_options(config, switch: str) -> None:
    """Settings of the id part are an error without it (they would be silently ignored)."""
    if getattr(config, switch):
        return
    given = [name for name, default in (("id_init", "random"), ("id_dropout", 0.0), ("id_weight_decay", 0.0))
             if getattr(config, name) != default]
    if given:
        raise ValueError(f"{', '.join(given)} only apply with {switch}=true")


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


def rows_without_text(path: Path, item_ids: np.ndarray | None, matrix: np.ndarray) -> np.ndarray:
    """Boolean per row: a real item whose row is absent (all zeros) or was encoded from the fallback prompt
    (the sidecar's ``fallback_ids``)."""
    missing = ~np.abs(matrix).any(axis=1)
    missing[0] = False
    sidecar = Path(path).with_suffix(".json")
    if item_ids is not None and sidecar.is_file():
        fallback = {str(i) for i in read_json(sidecar).get("fallback_ids", [])}
        missing |= np.array([str(i) in fallback for i in item_ids])
        missing[0] = False
    return missing


def fill_without_text(matrix: torch.Tensor, without_text: torch.Tensor | None) -> torch.Tensor:
    """Rows of items without text replaced by the mean row of the items with text (the explicit fallback)."""
    if without_text is None or not without_text.any():
        return matrix
    with_text = ~without_text
    with_text[0] = False
    if not with_text.any():
        raise DataFormatError("<item text table>", "no item has text: nothing to fall back on")
    out = matrix.clone()
    out[without_text] = matrix[with_text].mean(dim=0)
    return out


def trained_rows(context, n_items: int, extra_tokens: int) -> torch.Tensor | None:
    """Rows whose id part may be non-zero: items with a training interaction, and the special tokens."""
    split = getattr(context, "split", None) if context is not None else None
    if split is None:
        return None
    counts = split.item_counts()
    return torch.as_tensor(np.concatenate([counts > 0, np.ones(extra_tokens, dtype=bool)]))


def report_without_text(count: int, total: int, where: str) -> dict:
    if count:
        print(f"{where}: {count} of {total} items have no text; they get the fallback row (mean text row)",
              file=sys.stderr, flush=True)
    return {"items": total, "items_without_text": count, "fallback": "mean row of the items with text"}


@EMBEDDINGS.register("frozen")
class FrozenTableEmbedding(ItemEmbedding):
    config_class = FrozenTableConfig

    def __init__(self, matrix: np.ndarray | torch.Tensor, dim: int, extra_tokens: int = 0, hidden: int | None = None,
                 dropout: float = 0.0, normalize: bool = False, residual_id: bool = False,
                 scaling: TableScaling = "raw", activation: AdapterActivation = "none", *,
                 whitening_shrinkage: float = 0.0, without_text: np.ndarray | torch.Tensor | None = None,
                 trained: torch.Tensor | None = None, id_init: IdInit = "random", id_dropout: float = 0.0,
                 id_weight_decay: float = 0.0):
        matrix = torch.as_tensor(np.asarray(matrix), dtype=torch.float32)
        super().__init__(matrix.shape[0] - 1, dim, extra_tokens)
        if normalize:
            matrix = torch.nn.functional.normalize(matrix, dim=1)
        if without_text is not None:
            matrix = fill_without_text(matrix, torch.as_tensor(np.asarray(without_text), dtype=torch.bool))
        matrix = scale_table(matrix, scaling, whitening_shrinkage)
        matrix = torch.cat([matrix, torch.zeros(extra_tokens, matrix.shape[1])])
        matrix[0] = 0
        self.register_buffer("frozen", matrix)
        width = hidden or (matrix.shape[1] + dim) // 2
        between = [nn.GELU()] if activation == "gelu" else []
        self.adapter = nn.Sequential(nn.Linear(matrix.shape[1], width), *between, nn.Dropout(dropout), nn.Linear(width, dim))
        self.residual = None
        if residual_id:
            rows = self.n_items + 1 + extra_tokens
            text_init = None
            if id_init == "text":
                with torch.no_grad():
                    text_init = self.adapter.eval()(matrix).detach()
                self.adapter.train()
            self.residual = IdPart(rows, dim, trained, id_init, id_dropout, id_weight_decay, text_init)
        self.info: dict = {}

    @classmethod
    def build(cls, config: FrozenTableConfig, n_items, dim, extra_tokens, context=None):
        item_ids = context.data.item_ids if context is not None else None
        matrix = load_item_matrix(Path(config.path), item_ids)
        if matrix.shape[0] != n_items + 1:
            raise DataFormatError(config.path, f"has {matrix.shape[0]} rows, expected {n_items + 1}")
        without_text = rows_without_text(Path(config.path), item_ids, matrix)
        module = cls(matrix, dim, extra_tokens, config.hidden, config.dropout, config.normalize, config.residual_id,
                     scaling=config.scaling, activation=config.activation,
                     whitening_shrinkage=config.whitening_shrinkage, without_text=without_text,
                     trained=trained_rows(context, n_items, extra_tokens), id_init=config.id_init,
                     id_dropout=config.id_dropout, id_weight_decay=config.id_weight_decay)
        module.info = {"item_text": report_without_text(int(without_text.sum()), n_items, f"embedding {config.path}")}
        return module

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.adapter(self.frozen[item_ids])
        return vectors if self.residual is None else vectors + self.residual(item_ids)

    def auxiliary_loss(self, item_ids: torch.Tensor) -> torch.Tensor | None:
        return None if self.residual is None else self.residual.penalty()

    def table(self) -> torch.Tensor:
        return self(torch.arange(self.n_items + 1, device=self.frozen.device))


class HybridTableConfig(FrozenTableConfig):
    residual_id: bool = Field(True, description="the id part (always on for the hybrid table)")
    id_init: IdInit = Field("zero", description="id part's start: zero (the model starts as the text table), "
                            "text (the adapter's initial output) or random (std 0.02)")


@EMBEDDINGS.register("hybrid")
class HybridTableEmbedding(FrozenTableEmbedding):
    """``vector(i) = adapter(text(i)) + id(i)``: the frozen table with its id part on (see the module docs)."""

    config_class = HybridTableConfig

    @classmethod
    def build(cls, config: HybridTableConfig, n_items, dim, extra_tokens, context=None):
        if not config.residual_id:
            raise ConfigError("embedding 'hybrid' needs residual_id=true (use --embedding frozen for the text "
                              "table alone)")
        return super().build(config, n_items, dim, extra_tokens, context)
