"""The item-embedding contract and its registry."""

from __future__ import annotations

import torch
from torch import nn

from lucidrec.config import validate_config
from lucidrec.registry import Registry

EMBEDDINGS: Registry[type["ItemEmbedding"]] = Registry("item embedding")


class ItemEmbedding(nn.Module):
    """Vectors for item ids ``0..n_items + extra_tokens``.

    Row 0 is padding; rows after ``n_items`` are special tokens a backbone may need (BERT4Rec's
    mask). Only rows ``0..n_items`` are ever scored.
    """

    config_class = None
    #: True when ``adjust_states`` replaces the backbone's states outright, so some backbone
    #: parameters get no gradient (DistributedDataParallel must then look for unused parameters).
    bypasses_backbone = False

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


def make_item_embedding(name: str, params: dict | None, n_items: int, dim: int, extra_tokens: int, context=None) -> ItemEmbedding:
    """Build the registered source ``name``; ``context`` carries run-level inputs (data, run folders)."""
    cls = EMBEDDINGS.get(name)
    config = validate_config(cls.config_class, params, f"embedding '{name}'")
    return cls.build(config, n_items=n_items, dim=dim, extra_tokens=extra_tokens, context=context)
