"""SASRec (Kang & McAuley 2018): causal self-attention over the item history.

Unlike the LLMEmb reference code, attention is causal: position t attends to positions <= t only
(tested). Pre-layer-norm blocks; padding keys are masked, and every position may attend to itself
so all-padding rows stay finite.

``block="ligr"`` swaps in LiGR blocks (Gu et al. 2025, "From Features to Transformers"), the layers of
eSASRec (Petrov et al., RecSys 2025): pre-layer-norm, each residual branch scaled by a sigmoid gate
computed from the branch's input, and a SwiGLU feed-forward ``ffn_multiplier`` times wider than the
hidden size. The named preset ``esasrec`` (``lucidrec train --preset esasrec``) is the whole recipe.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from typing import Literal

from pydantic import Field
from torch import nn

from lucidrec.models.backbone import BACKBONES, Backbone, BackboneConfig


class SASRecConfig(BackboneConfig):
    hidden: int = 64
    max_len: int = 200
    layers: int = Field(2, ge=1)
    heads: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)
    causal: bool = Field(True, description="False reproduces the LLMEmb code's missing mask (fidelity studies only)")
    block: BlockKind = Field("pre_ln", description="transformer block: pre_ln (pre-layer-norm, GELU feed-forward) or "
                             "ligr (sigmoid-gated residuals and a SwiGLU feed-forward, as eSASRec)")
    ffn_multiplier: int = Field(1, ge=1, description="feed-forward width as a multiple of hidden (eSASRec: 4)")


BlockKind = Literal["pre_ln", "ligr"]


class SelfAttention:
    """Multi-head scaled dot-product attention with a boolean mask (B, 1, L, L), mixed into the blocks, which
    own ``qkv``, ``out``, ``heads`` and ``attn_dropout`` (created in the order of earlier checkpoints, so a seed
    initialises a pre_ln model as before)."""

    def attend(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        b, length, d = x.shape
        q, k, v = self.qkv(x).view(b, length, 3, self.heads, d // self.heads).permute(2, 0, 3, 1, 4)
        attended = F.scaled_dot_product_attention(
            q, k, v, attn_mask=mask, dropout_p=self.attn_dropout if self.training else 0.0
        )
        return self.out(attended.transpose(1, 2).reshape(b, length, d))


class TransformerBlock(SelfAttention, nn.Module):
    """Pre-layer-norm block: x + attention(norm(x)), then x + ffn(norm(x))."""

    def __init__(self, hidden: int, heads: int, dropout: float, ffn_multiplier: int = 1):
        super().__init__()
        width = hidden * ffn_multiplier
        self.heads = heads
        self.norm_attn = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = nn.Sequential(nn.Linear(hidden, width), nn.GELU(), nn.Dropout(dropout), nn.Linear(width, hidden))
        self.dropout = nn.Dropout(dropout)
        self.attn_dropout = dropout

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + self.dropout(self.attend(self.norm_attn(x), mask))
        return x + self.dropout(self.ffn(self.norm_ffn(x)))


class SwiGLU(nn.Module):
    """Feed-forward silu(x W1) * (x W3) then W2, without biases (as LLaMA, FuXi and LiGR)."""

    def __init__(self, hidden: int, width: int, dropout: float):
        super().__init__()
        self.gate = nn.Linear(hidden, width, bias=False)
        self.up = nn.Linear(hidden, width, bias=False)
        self.down = nn.Linear(width, hidden, bias=False)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.down(self.dropout(F.silu(self.gate(x)) * self.up(x)))


class LiGRBlock(SelfAttention, nn.Module):
    """LiGR block: x + sigmoid(G1 x) * attention(norm(x)), then x + sigmoid(G2 x) * swiglu(norm(x))."""

    def __init__(self, hidden: int, heads: int, dropout: float, ffn_multiplier: int = 4):
        super().__init__()
        self.heads = heads
        self.norm_attn = nn.LayerNorm(hidden)
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.out = nn.Linear(hidden, hidden)
        self.attn_dropout = dropout
        self.gate_attn = nn.Linear(hidden, hidden)
        self.norm_ffn = nn.LayerNorm(hidden)
        self.ffn = SwiGLU(hidden, hidden * ffn_multiplier, dropout)
        self.gate_ffn = nn.Linear(hidden, hidden)
        self.dropout = nn.Dropout(dropout)

    def forward(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        x = x + torch.sigmoid(self.gate_attn(x)) * self.dropout(self.attend(self.norm_attn(x), mask))
        return x + torch.sigmoid(self.gate_ffn(x)) * self.dropout(self.ffn(self.norm_ffn(x)))


BLOCKS: dict[str, type[nn.Module]] = {"pre_ln": TransformerBlock, "ligr": LiGRBlock}


def attention_mask(seqs: torch.Tensor, causal: bool) -> torch.Tensor:
    """(B, 1, L, L) boolean: True where a query may attend a key."""
    length = seqs.shape[1]
    keys = (seqs != 0)[:, None, None, :]
    allowed = keys.expand(-1, 1, length, -1)
    if causal:
        allowed = allowed & torch.ones(length, length, dtype=torch.bool, device=seqs.device).tril()
    return allowed | torch.eye(length, dtype=torch.bool, device=seqs.device)


class SelfAttentionBackbone(Backbone):
    """Item + position embeddings, transformer blocks (pre-LN or LiGR), a final norm (SASRec and BERT4Rec)."""

    causal = True

    def __init__(self, config, items, state_hook=None):
        super().__init__(config, items, state_hook)
        self.positions = nn.Embedding(config.max_len, config.hidden)
        self.input_dropout = nn.Dropout(config.dropout)
        block = BLOCKS[config.block]
        self.blocks = nn.ModuleList(block(config.hidden, config.heads, config.dropout, config.ffn_multiplier)
                                    for _ in range(config.layers))
        self.final_norm = nn.LayerNorm(config.hidden)
        nn.init.normal_(self.positions.weight, std=0.02)

    def input_embeddings(self, seqs: torch.Tensor) -> torch.Tensor:
        # Item vectors are scaled by sqrt(d) as in the SASRec paper: without it (RecBole's choice) test
        # NDCG@10 on amazon-scientific drops 0.101 -> 0.083 (docs/benchmarks.md, bench/sasrec_design_ablation.py).
        # Positions count back from the most recent item, so padding never shifts them.
        return self.items(seqs) * math.sqrt(self.config.hidden) + self.positions.weight[-seqs.shape[1]:]

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        x = self.input_embeddings(seqs)
        keep = (seqs != 0).unsqueeze(-1)
        x = self.input_dropout(x) * keep
        mask = attention_mask(seqs, self.causal)
        for block in self.blocks:
            x = block(x, mask) * keep
        return self.final_norm(x)


@BACKBONES.register("sasrec")
class SASRec(SelfAttentionBackbone):
    config_class = SASRecConfig

    @property
    def causal(self) -> bool:
        return self.config.causal
