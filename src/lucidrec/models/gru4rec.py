"""GRU4Rec (Hidasi et al. 2016) for next-item prediction: a GRU over the item history.

Left-padded inputs are packed so padding never touches the recurrent state.
"""

from __future__ import annotations

import torch
from pydantic import Field
from torch import nn
from torch.nn.utils.rnn import pack_padded_sequence, pad_packed_sequence

from lucidrec.models.backbone import BACKBONES, Backbone, BackboneConfig


class GRU4RecConfig(BackboneConfig):
    hidden: int = 64
    max_len: int = 200
    layers: int = Field(1, ge=1)
    dropout: float = Field(0.2, ge=0, lt=1)


@BACKBONES.register("gru4rec")
class GRU4Rec(Backbone):
    config_class = GRU4RecConfig

    def __init__(self, config: GRU4RecConfig, items, state_hook=None):
        super().__init__(config, items, state_hook)
        self.input_dropout = nn.Dropout(config.dropout)
        self.gru = nn.GRU(config.hidden, config.hidden, num_layers=config.layers, batch_first=True,
                          dropout=config.dropout if config.layers > 1 else 0.0)
        self.output = nn.Linear(config.hidden, config.hidden)

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        b, length = seqs.shape
        lengths = (seqs != 0).sum(dim=1)
        # Left-aligned copy: column j holds the j-th real item of the row.
        shift = (length - lengths)[:, None]
        gather = (torch.arange(length)[None, :] + shift).clamp(max=length - 1)
        left = torch.gather(seqs, 1, gather) * (torch.arange(length)[None, :] < lengths[:, None])
        x = self.input_dropout(self.items(left))
        packed = pack_padded_sequence(x, lengths.clamp(min=1).cpu(), batch_first=True, enforce_sorted=False)
        out, _ = self.gru(packed)
        out, _ = pad_packed_sequence(out, batch_first=True, total_length=length)
        # Back to right-aligned positions, so the last column is the most recent state.
        back = (torch.arange(length)[None, :] - shift).clamp(min=0)
        states = torch.gather(out, 1, back[..., None].expand(-1, -1, out.shape[-1]))
        states = states * (seqs != 0).unsqueeze(-1)
        return self.output(states)
