"""The two seams a backbone composes, and the item-embedding registry.

- :class:`ItemEmbedding`: vectors for item ids and the whole scorable table (any backbone takes any one).
- :class:`StateHook`: a small module applied to the backbone's sequence states before they score items
  (GER's user guided part; LANE's preference attention). The backbone declares it
  (``Backbone.state_hook``); an item embedding may bring its own (:meth:`ItemEmbedding.state_hook`).

An item embedding only turns given tensors and artifacts into vectors: whatever has to be trained or
computed first (a tuned encoder, a reference run, attribute scores) is a stage of a method recipe
(:mod:`lucidrec.methods`), which leaves its outputs in the run folder for :meth:`ItemEmbedding.build`.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from lucidrec.config import ConfigError, validate_config
from lucidrec.data.sequences import SequenceData
from lucidrec.data.split import Split
from lucidrec.registry import Registry

EMBEDDINGS: Registry[type["ItemEmbedding"]] = Registry("item embedding")


class StateHook(nn.Module):
    """Edits the per-position sequence states ``(B, L, d)`` before they score items.

    ``users`` are user indices (None, or ids outside the table, mean unknown users). The output has the
    states' shape; scores stay ``states · item table``, so a hook never changes how items are scored.
    """

    #: True when the hook replaces the backbone's states outright, so some backbone parameters get no
    #: gradient (DistributedDataParallel must then look for unused parameters).
    bypasses_backbone: bool = False

    def forward(self, states: torch.Tensor, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        raise NotImplementedError


@dataclass
class EmbeddingContext:
    """What a run gives an item embedding when it is built.

    ``run_dir`` holds what the method's recipe prepared (e.g. ``<run>/llmemb/``, ``<run>/ger/``);
    ``load_model`` rebuilds another finished run's model (GER's frozen base backbone), so no
    embedding imports the training layer; ``backbone_objective`` is the run's backbone objective.
    """

    data: SequenceData
    split: Split | None = None
    run_dir: Path | None = None
    backbone_objective: str = "causal"
    load_model: Callable[[Path], nn.Module] | None = None
    progress: bool = True


class ItemEmbedding(nn.Module):
    """Vectors for item ids ``0..n_items + extra_tokens``.

    Row 0 is padding; rows after ``n_items`` are special tokens a backbone may need (BERT4Rec's
    mask). Only rows ``0..n_items`` are ever scored.
    """

    config_class = None

    def __init__(self, n_items: int, dim: int, extra_tokens: int = 0):
        super().__init__()
        self.n_items = n_items
        self.dim = dim
        self.extra_tokens = extra_tokens

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def table(self) -> torch.Tensor:
        """All scorable item vectors, rows ``0..n_items`` (row 0 is padding)."""
        return self(torch.arange(self.n_items + 1))

    def auxiliary_loss(self, item_ids: torch.Tensor) -> torch.Tensor | None:
        """An extra training term over the batch's target items (e.g. LLMEmb alignment); none by default."""
        return None

    def state_hook(self) -> StateHook | None:
        """The state hook this embedding needs on the backbone (GER's user part); none by default."""
        return None

    @classmethod
    def build(cls, config, n_items: int, dim: int, extra_tokens: int, context: EmbeddingContext | None = None):
        return cls(n_items, dim, extra_tokens, config=config)


def prepared_folder(context: "EmbeddingContext | None", embedding: str, subdir: str, *, needs_split: bool = False) -> Path:
    """``<run>/<subdir>``, where the method's recipe left what the embedding ``embedding`` is built from;
    without a run folder (or a split, when needed) the embedding cannot be built outside its recipe."""
    if context is None or context.run_dir is None or (needs_split and context.split is None):
        raise ConfigError(f"the '{embedding}' embedding is built from a run folder its recipe prepared "
                          f"(lucidrec train --embedding {embedding})")
    return Path(context.run_dir) / subdir


def with_special_rows(item_ids: torch.Tensor, rows: torch.Tensor, special: torch.Tensor | None,
                      n_items: int) -> torch.Tensor:
    """``rows`` with the special-token vectors ``special`` (row k = id ``n_items + 1 + k``, e.g. BERT4Rec's
    mask) where ``item_ids`` lie past the catalog."""
    if special is None:
        return rows
    beyond = item_ids > n_items
    if not beyond.any():
        return rows
    return torch.where(beyond[..., None], special[(item_ids - n_items - 1).clamp(min=0)], rows)


def make_item_embedding(name: str, params: dict | None, n_items: int, dim: int, extra_tokens: int,
                        context: EmbeddingContext | None = None) -> ItemEmbedding:
    """Build the registered source ``name``; ``context`` carries run-level inputs (data, the run folder)."""
    cls = EMBEDDINGS.get(name)
    config = validate_config(cls.config_class, params, f"embedding '{name}'")
    return cls.build(config, n_items=n_items, dim=dim, extra_tokens=extra_tokens, context=context)
