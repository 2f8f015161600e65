"""The id part of a text + id item table: ``vector(i) = f(text(i)) + id(i)``.

A linear map of a text vector cannot hold what only the interaction data says about an item; a
trainable id vector can (LLM-ESR's dual view, AlphaFuse, text-initialised id tables). Rare items
should lean on their text, so the id part can be weakened where it is least reliable:

- items without any training interaction get an id part of exactly zero (a mask, not a value the
  optimizer could move), so a new item is scored from its text alone;
- ``dropout``: during training only, each item's whole id vector is dropped with probability p (drawn
  per item at every call, the kept ones scaled by 1/(1 - p), as in embedding dropout), so the text
  part must carry the item on its own part of the time;
- ``weight_decay``: an L2 penalty ``weight_decay/2 · ||id||²`` over the id vectors of the trained
  items, added to the loss (``auxiliary_loss``), so an item keeps a large id vector only where its
  interactions pay for it.

``init``: ``random`` (normal, std 0.02, as the plain id table), ``zero`` (the model starts as the text
table alone) or ``text`` (a given matrix, e.g. the adapter's initial output for each item's text).
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

IdInit = Literal["random", "zero", "text"]
INIT_STD = 0.02


class IdPart(nn.Module):
    def __init__(self, n_rows: int, dim: int, trained: torch.Tensor | None = None, init: IdInit = "random",
                 dropout: float = 0.0, weight_decay: float = 0.0, text_init: torch.Tensor | None = None):
        super().__init__()
        if not 0 <= dropout < 1:
            raise ValueError(f"id dropout must be in [0, 1), got {dropout}")
        # Named ``weight`` (an nn.Embedding) so the weights of runs saved with the plain id residual still load.
        self.weight = nn.Embedding(n_rows, dim, padding_idx=0)
        with torch.no_grad():
            if init == "random":
                nn.init.normal_(self.weight.weight, std=INIT_STD)
            elif init == "zero":
                self.weight.weight.zero_()
            elif init == "text":
                if text_init is None or tuple(text_init.shape) != (n_rows, dim):
                    raise ValueError(f"id init 'text' needs a ({n_rows}, {dim}) matrix")
                self.weight.weight.copy_(text_init)
            else:
                raise ValueError(f"unknown id init {init!r}; valid: random, zero, text")
            self.weight.weight[0].zero_()
        if trained is None:
            trained = torch.ones(n_rows, dtype=torch.bool)
        trained = torch.as_tensor(trained, dtype=torch.bool).clone()
        if trained.shape != (n_rows,):
            raise ValueError(f"the trained-item mask has shape {tuple(trained.shape)}, expected ({n_rows},)")
        trained[0] = False
        # Not persistent: it is rebuilt from the split, so saved weights stay loadable either way.
        self.register_buffer("trained", trained[:, None].float(), persistent=False)
        self.dropout, self.weight_decay = dropout, weight_decay

    def forward(self, item_ids: torch.Tensor) -> torch.Tensor:
        vectors = self.weight(item_ids) * self.trained[item_ids]
        if self.training and self.dropout > 0:
            keep = (torch.rand(self.weight.num_embeddings, device=vectors.device) >= self.dropout).float()
            vectors = vectors * (keep / (1 - self.dropout))[item_ids].unsqueeze(-1)
        return vectors

    def penalty(self) -> torch.Tensor | None:
        if not self.weight_decay:
            return None
        return 0.5 * self.weight_decay * (self.weight.weight * self.trained).pow(2).sum()
