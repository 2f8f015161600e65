"""RAT: the ``"llmemb"`` item embedding: frozen LLM table -> trainable adapter, plus the CF alignment loss.

``vector(i) = Linear(h -> d)(Linear(D -> h)(E_llm[i]))`` with no non-linearity (as in the paper);
padding and special-token rows of E_llm are zeros, so only the adapter maps them (BERT4Rec's mask
token gets the adapter's bias path). ``auxiliary_loss(targets)`` returns
``align_weight · L(E_cf[targets], adapter(E_llm[targets]))`` (soft-target contrastive, τ = 2 by
default, as in the code's ``Contrastive_Loss2(srs_emb, llm_emb)``); the trainer adds it. E_llm and
E_cf are buffers: they never receive gradients.

``build`` runs (or reuses) the whole chain for the run's data: SCFT, item table, collaborative
SASRec, and keeps a copy of the tables in ``<run>/llmemb/`` so ``load_run`` and ``--resume`` never
depend on the artifact cache.
"""

from __future__ import annotations

import contextlib
from pathlib import Path

import numpy as np
import torch

from lucidrec.config import ConfigError
from lucidrec.embeddings.base import EMBEDDINGS
from lucidrec.embeddings.frozen_table import AdapterActivation, FrozenTableEmbedding, TableScaling
from lucidrec.embeddings.llmemb import artifacts
from lucidrec.embeddings.llmemb.collaborative import cf_key, cf_run_config, get_collaborative_table
from lucidrec.embeddings.llmemb.config import LLMEmbConfig
from lucidrec.embeddings.llmemb.table import get_item_table, say
from lucidrec.files import atomic_numpy_save, read_json, write_json_atomic
from lucidrec.train.contrastive import contrastive_loss

RUN_SUBDIR = "llmemb"


@contextlib.contextmanager
def isolated_rng():
    """Heavy steps (SCFT, a nested SASRec run) must not shift the caller's random streams: a cached
    and a freshly built chain then give the same adapter and backbone initialisation."""
    state = np.random.get_state()
    with torch.random.fork_rng(devices=[]):
        try:
            yield
        finally:
            np.random.set_state(state)


@EMBEDDINGS.register("llmemb")
class LLMEmbEmbedding(FrozenTableEmbedding):
    config_class = LLMEmbConfig

    def __init__(self, matrix, dim: int, extra_tokens: int = 0, hidden: int | None = None, dropout: float = 0.0,
                 collaborative: np.ndarray | torch.Tensor | None = None, align_weight: float = 0.01,
                 align_temperature: float = 2.0, align_loss: str = "soft", align_max_items: int | None = 1024,
                 residual_id: bool = False, table_scaling: TableScaling = "raw",
                 adapter_activation: AdapterActivation = "none"):
        matrix = np.asarray(matrix, dtype=np.float32)
        super().__init__(matrix, dim, extra_tokens, hidden or max(1, matrix.shape[1] // 2), dropout, normalize=False,
                         residual_id=residual_id, scaling=table_scaling, activation=adapter_activation)
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
    def build(cls, config: LLMEmbConfig, n_items, dim, extra_tokens, context=None):
        if context is None or getattr(context, "data", None) is None:
            raise ConfigError("embedding 'llmemb' needs the run's data (build it through a run config)")
        data = context.data
        run_config = getattr(context, "config", None)
        progress = bool(run_config.train.progress) if run_config is not None else True
        if config.needs_alignment and not config.collaborative_run and run_config is None:
            raise ConfigError("llmemb: pass collaborative_run (no run config to train a collaborative SASRec from)")
        key = chain_key(config, data, dim, run_config)
        copy = Path(context.run_dir) / RUN_SUBDIR if getattr(context, "run_dir", None) else None
        loaded = load_run_copy(copy, key) if copy is not None else None
        if loaded is None:
            with isolated_rng():
                table = get_item_table(config, data, progress=progress)
                cf, cf_info = (get_collaborative_table(config, context, dim, progress=progress)
                               if config.needs_alignment else (None, None))
            info = {"chain_key": key, "variant": config.variant, "table": table.provenance, "collaborative": cf_info}
            loaded = (table.matrix, cf, info)
            if copy is not None:
                save_run_copy(copy, *loaded)
        else:
            say(f"using the tables kept in {copy}", progress)
        matrix, cf, info = loaded
        if matrix.shape[0] != n_items + 1:
            raise ConfigError(f"llmemb: item table has {matrix.shape[0]} rows, expected {n_items + 1}")
        module = cls(matrix, dim, extra_tokens, config.adapter_hidden, config.adapter_dropout, cf, config.align_weight,
                     config.align_temperature, config.align_loss, config.align_max_items, config.residual_id,
                     table_scaling=config.table_scaling, adapter_activation=config.adapter_activation)
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
        if not self.align_weight:
            return None
        loss = self.alignment_loss(item_ids)
        return None if loss is None else self.align_weight * loss


def chain_key(config: LLMEmbConfig, data, dim: int, run_config) -> str:
    """What the tables of a run depend on (cheap to compute; identifies the copy kept in the run folder)."""
    settings = config.model_dump(mode="json")
    # Settings that cannot change the tables. residual_id, table_scaling and adapter_activation (applied
    # when the module is built) are left out so that run folders made before they existed keep their
    # key; the adapter fields already in the key stay for that reason.
    for name in ("artifacts_dir", "scft_checkpoint_every", "encode_batch_size", "residual_id", "table_scaling",
                 "adapter_activation"):
        settings.pop(name, None)
    cf = None
    if config.needs_alignment and config.collaborative_run:
        given = Path(config.collaborative_run).expanduser() / "item_table.npy"
        cf = artifacts.file_digest(given) if given.is_file() else str(given)  # a retrained run is noticed
    elif config.needs_alignment:
        cf = cf_key(cf_run_config(run_config, dim, config), data.data_hash)
    return artifacts.content_key({"llmemb": settings, "data_hash": data.data_hash, "dim": dim, "cf": cf})


def save_run_copy(folder: Path, matrix: np.ndarray, cf: np.ndarray | None, info: dict) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    atomic_numpy_save(matrix, folder / "item_table.npy")
    if cf is not None:
        atomic_numpy_save(cf, folder / "cf_table.npy")
    write_json_atomic(folder / "provenance.json", info)


def load_run_copy(folder: Path, key: str):
    meta = folder / "provenance.json"
    if not meta.is_file():
        return None
    info = read_json(meta)
    if info.get("chain_key") != key:
        return None
    cf_path = folder / "cf_table.npy"
    cf = np.load(cf_path) if info.get("collaborative") is not None and cf_path.is_file() else None
    if info.get("collaborative") is not None and cf is None:
        return None
    return np.load(folder / "item_table.npy"), cf, info
