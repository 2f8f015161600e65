"""RAT: the ``"llmemb"`` item embedding: frozen LLM table -> trainable adapter, plus the CF alignment loss.

``vector(i) = Linear(h -> d)(Linear(D -> h)(E_llm[i]))`` with no non-linearity (as in the paper);
padding and special-token rows of E_llm are zeros, so only the adapter maps them (BERT4Rec's mask
token gets the adapter's bias path). ``auxiliary_loss(targets)`` returns
``align_weight · L(E_cf[targets], adapter(E_llm[targets]))`` (soft-target contrastive, τ = 2 by
default, as in the code's ``Contrastive_Loss2(srs_emb, llm_emb)``); the trainer adds it. E_llm and
E_cf are buffers: they never receive gradients.

``build`` reads the tables the LLMEmb recipe (:mod:`lucidrec.methods.llmemb`) keeps in ``<run>/llmemb/``,
so ``load_run`` and ``--resume`` never depend on the artifact cache.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from lucidrec.config import ConfigError
from lucidrec.embeddings.base import EMBEDDINGS, EmbeddingContext, prepared_folder
from lucidrec.embeddings.contrastive import contrastive_loss
from lucidrec.embeddings.frozen_table import AdapterActivation, FrozenTableEmbedding, TableScaling, trained_rows
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.files import atomic_numpy_save, read_json, write_json_atomic

RUN_SUBDIR = "llmemb"


@EMBEDDINGS.register("llmemb")
class LLMEmbEmbedding(FrozenTableEmbedding):
    config_class = LLMEmbConfig

    def __init__(self, matrix, dim: int, extra_tokens: int = 0, hidden: int | None = None, dropout: float = 0.0,
                 collaborative: np.ndarray | torch.Tensor | None = None, align_weight: float = 0.01,
                 align_temperature: float = 2.0, align_loss: str = "soft", align_max_items: int | None = 1024,
                 residual_id: bool = False, table_scaling: TableScaling = "raw",
                 adapter_activation: AdapterActivation = "none", **table_options):
        matrix = np.asarray(matrix, dtype=np.float32)
        super().__init__(matrix, dim, extra_tokens, hidden or max(1, matrix.shape[1] // 2), dropout, normalize=False,
                         residual_id=residual_id, scaling=table_scaling, activation=adapter_activation, **table_options)
        self.align_weight, self.align_temperature = align_weight, align_temperature
        self.align_loss, self.align_max_items = align_loss, align_max_items
        self.info: dict = {}
        if collaborative is not None:
            collaborative = torch.as_tensor(np.asarray(collaborative), dtype=torch.float32)
            if collaborative.shape != (self.n_items + 1, dim):
                raise ConfigError(f"llmemb: E_cf has shape {tuple(collaborative.shape)}, expected ({self.n_items + 1}, {dim})")
            self.register_buffer("collaborative", collaborative)
        else:
            self.collaborative = None

    @classmethod
    def build(cls, config: LLMEmbConfig, n_items, dim, extra_tokens, context: EmbeddingContext | None = None):
        """The module over the tables the LLMEmb recipe left in ``<run>/llmemb/`` (item table, E_cf)."""
        folder = prepared_folder(context, "llmemb", RUN_SUBDIR)
        loaded = read_tables(folder)
        if loaded is None:
            raise ConfigError(f"{folder}: no LLMEmb tables (run the LLMEmb recipe: lucidrec train --embedding llmemb "
                              "with these settings, or lucidrec method status RUN)")
        matrix, cf, info = loaded
        if config.needs_alignment and cf is None:
            raise ConfigError(f"{folder}: variant '{config.variant}' aligns with E_cf but the folder holds no cf_table.npy")
        if matrix.shape[0] != n_items + 1:
            raise ConfigError(f"llmemb: item table has {matrix.shape[0]} rows, expected {n_items + 1}")
        adapter, id_part, alignment = config.adapter, config.id_part, config.alignment
        module = cls(matrix, dim, extra_tokens, adapter.hidden, adapter.dropout, cf, alignment.weight,
                     alignment.temperature, alignment.loss, alignment.max_items, id_part.enabled,
                     table_scaling=config.table.scaling, adapter_activation=adapter.activation,
                     whitening_shrinkage=config.table.whitening_shrinkage, trained=trained_rows(context, n_items, extra_tokens),
                     id_init=id_part.init, id_dropout=id_part.dropout, id_weight_decay=id_part.weight_decay)
        module.info = info
        return module

    def alignment_loss(self, item_ids: torch.Tensor) -> torch.Tensor | None:
        """Unweighted L_align over the real items among ``item_ids`` (a random subset above align_max_items)."""
        if self.collaborative is None:
            return None
        ids = item_ids[(item_ids > 0) & (item_ids <= self.n_items)]
        if len(ids) < 2:
            return None
        if self.align_max_items and len(ids) > self.align_max_items:
            ids = ids[torch.randperm(len(ids))[: self.align_max_items]]
        return contrastive_loss(self.align_loss, self.collaborative[ids], self(ids), self.align_temperature)

    def auxiliary_loss(self, item_ids: torch.Tensor) -> torch.Tensor | None:
        terms = [super().auxiliary_loss(item_ids)]  # the id part's weight decay, if any
        if self.align_weight:
            loss = self.alignment_loss(item_ids)
            terms.append(None if loss is None else self.align_weight * loss)
        terms = [term for term in terms if term is not None]
        return sum(terms) if terms else None


def save_tables(folder: Path, matrix: np.ndarray, cf: np.ndarray | None, info: dict) -> None:
    """What a run keeps of the chain: ``item_table.npy``, ``cf_table.npy`` (with alignment), ``provenance.json`` last."""
    folder.mkdir(parents=True, exist_ok=True)
    atomic_numpy_save(matrix, folder / "item_table.npy")
    if cf is not None:
        atomic_numpy_save(cf, folder / "cf_table.npy")
    write_json_atomic(folder / "provenance.json", info)


def read_tables(folder: Path, key: str | None = None):
    """``(item table, E_cf or None, provenance)`` kept in ``folder``; None when absent, incomplete or (with
    ``key``) made for another chain."""
    meta = Path(folder) / "provenance.json"
    if not meta.is_file():
        return None
    info = read_json(meta)
    if key is not None and info.get("chain_key") != key:
        return None
    cf_path = Path(folder) / "cf_table.npy"
    cf = np.load(cf_path) if info.get("collaborative") is not None and cf_path.is_file() else None
    if info.get("collaborative") is not None and cf is None:
        return None
    return np.load(Path(folder) / "item_table.npy"), cf, info
