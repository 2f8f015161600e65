"""BERT4Rec (Sun et al. 2019): bidirectional self-attention trained by cloze (masked items).

At inference a mask token is appended after the history and its state scores the next item.
"""

from __future__ import annotations

import torch
from pydantic import Field

from lucidrec.data.sequences import Ragged
from lucidrec.models.backbone import BACKBONES, BackboneConfig, left_pad
from lucidrec.models.sasrec import BlockKind, SelfAttentionBackbone


class BERT4RecConfig(BackboneConfig):
    hidden: int = 64
    max_len: int = 200
    layers: int = Field(2, ge=1)
    heads: int = Field(2, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    mask_prob: float = Field(0.2, gt=0, lt=1, description="share of positions masked for cloze training")
    block: BlockKind = Field("pre_ln", description="transformer block: pre_ln or ligr (see SASRec)")
    ffn_multiplier: int = Field(1, ge=1, description="feed-forward width as a multiple of hidden")


@BACKBONES.register("bert4rec")
class BERT4Rec(SelfAttentionBackbone):
    config_class = BERT4RecConfig
    objective = "cloze"
    extra_tokens = 1  # the mask token, id n_items + 1
    causal = False

    @property
    def mask_token(self) -> int:
        return self.items.n_items + 1

    def inference_input(self, history: Ragged, to_longest: bool = True) -> torch.Tensor:
        return left_pad(history, self.config.max_len, append=self.mask_token, to_longest=to_longest)
