"""The plain learned id table: one trainable vector per item."""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn

from lucidrec.config import StrictConfig
from lucidrec.embeddings.base import EMBEDDINGS, ItemEmbedding


class IdEmbeddingConfig(StrictConfig):
    init_std: float = Field(0.02, gt=0, description="normal init scale (truncated-normal free, like BERT)")


@EMBEDDINGS.register("id")
class IdEmbedding(ItemEmbedding):
    config_class = IdEmbeddingConfig

    def __init__(self, n_items: int, dim: int, extra_tokens: int = 0, config: IdEmbeddingConfig | None = None):
        super().__init__(n_items, dim, extra_tokens)
        config = config or IdEmbeddingConfig()
        self.weight = nn.Embedding(n_items + 1 + extra_tokens, dim, padding_idx=0)
        nn.init.normal_(self.weight.weight, std=config.init_std)
        with torch.no_grad():
            self.weight.weight[0].zero_()

    @classmethod
    def build(cls, config, n_items, dim, extra_tokens, context=None):
        return cls(n_items, dim, extra_tokens, config)

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        return self.weight(item_ids)

    def table(self) -> torch.Tensor:
        return self.weight.weight[: self.n_items + 1]
