"""Caser (Tang & Wang 2018): horizontal and vertical convolutions over the last L item embeddings.

Applied at every position (a sliding window of the L most recent items), so it follows the same
per-position protocol as the other backbones. The original's user embedding is left out so the
model serves users unseen in training; see docs/fidelity.md.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from pydantic import Field
from torch import nn

from lucidrec.models.backbone import BACKBONES, Backbone, BackboneConfig


class CaserConfig(BackboneConfig):
    hidden: int = 64
    max_len: int = 200
    window: int = Field(5, ge=1, description="L: how many recent items each state looks at")
    horizontal_filters: int = Field(16, ge=1)
    vertical_filters: int = Field(4, ge=1)
    dropout: float = Field(0.3, ge=0, lt=1)


@BACKBONES.register("caser")
class Caser(Backbone):
    config_class = CaserConfig

    def __init__(self, config: CaserConfig, items, state_hook=None):
        super().__init__(config, items, state_hook)
        window, hidden = config.window, config.hidden
        self.horizontal = nn.ModuleList(nn.Conv2d(1, config.horizontal_filters, (h, hidden)) for h in range(1, window + 1))
        self.vertical = nn.Conv2d(1, config.vertical_filters, (window, 1))
        features = config.horizontal_filters * window + config.vertical_filters * hidden
        self.dropout = nn.Dropout(config.dropout)
        self.project = nn.Linear(features, hidden)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        b, length = seqs.shape
        window, hidden = self.config.window, self.config.hidden
        padded = F.pad(seqs, (window - 1, 0))
        windows = padded.unfold(1, window, 1)  # (B, L, window): the window ending at each position
        x = self.items(windows).reshape(b * length, window, hidden)
        # The convolutions are written as matrix products with the Conv2d weights: a (h x hidden)
        # kernel over a (window x hidden) image is one product per h-row slice, which CPUs run much
        # faster than conv2d with a single input channel (amazon-beauty epoch: 77 s -> 54 s, see
        # docs/benchmarks.md). Same parameters, so checkpoints are unchanged.
        horizontal = []
        for h, conv in enumerate(self.horizontal, start=1):
            slices = x.unfold(1, h, 1).transpose(2, 3).reshape(b * length, window - h + 1, h * hidden)
            activations = F.relu(slices @ conv.weight.reshape(conv.out_channels, h * hidden).t() + conv.bias)
            horizontal.append(activations.amax(dim=1))  # max-pool over the slice positions
        vertical = torch.einsum("nwd,fw->nfd", x, self.vertical.weight.reshape(self.vertical.out_channels, window))
        vertical = (vertical + self.vertical.bias[:, None]).reshape(b * length, -1)
        z = torch.cat([*horizontal, vertical], dim=1)
        states = F.relu(self.project(self.dropout(z))).reshape(b, length, -1)
        return states * (seqs != 0).unsqueeze(-1)
