"""BERT4Rec (Sun et al. 2019): bidirectional self-attention trained by cloze (masked items).

At inference a mask token is appended after the history and its state scores the next item.
"""

from __future__ import annotations

import math

import torch
from pydantic import Field
from torch import nn

from lucidrec.data.sequences import Ragged
from lucidrec.models.backbone import BACKBONES, Backbone, BackboneConfig, left_pad
from lucidrec.models.sasrec import TransformerBlock, attention_mask


class BERT4RecConfig(BackboneConfig):
    hidden: int = 64
    max_len: int = 200
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    mask_prob: float = Field(0.2, gt=0, lt=1, description="share of positions masked for cloze training")


@BACKBONES.register("bert4rec")
class BERT4Rec(Backbone):
    config_class = BERT4RecConfig
    objective = "cloze"
    extra_tokens = 1  # the mask token, id n_items + 1

    def __init__(self, config: BERT4RecConfig, items):
        super().__init__(config, items)
        self.positions = nn.Embedding(config.max_len, config.hidden)
        self.input_dropout = nn.Dropout(config.dropout)
        self.blocks = nn.ModuleList(TransformerBlock(config.hidden, config.heads, config.dropout) for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.hidden)
        nn.init.normal_(self.positions.weight, std=0.02)

    @property
    def mask_token(self) -> int:
        return self.items.n_items + 1

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        x = self.items(seqs) * math.sqrt(self.config.hidden) + self.positions.weight[-seqs.shape[1]:]
        keep = (seqs != 0).unsqueeze(-1)
        x = self.input_dropout(x) * keep
        mask = attention_mask(seqs, causal=False)
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.final_norm(x)

    def inference_input(self, history: Ragged) -> torch.Tensor:
        return left_pad(history, self.config.max_len, append=self.mask_token)
