"""The backbone protocol: item histories in, per-position states out; scores = states · item table.

Two declared seams: the item embedding (``items``) and an optional :class:`StateHook`
(``state_hook``) applied to the states before they score items (GER's user part, LANE's preferences).

Histories are left-padded (the most recent item is always the last column) and truncated from the
left when longer than ``max_len``: a model sees the ``max_len`` most recent items. Batches are cut to
their longest row (``to_longest``): every backbone counts positions from the right end and masks
padding, so the extra columns of padding to ``max_len`` would change nothing but the cost.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lucidrec.config import StrictConfig, validate_config
from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.base import ItemEmbedding, StateHook
from lucidrec.registry import Registry

BACKBONES: Registry[type["Backbone"]] = Registry("backbone")


class BackboneConfig(StrictConfig):
    hidden: int = 64
    max_len: int = 50
    dropout: float = 0.2


def left_pad(history: Ragged, max_len: int, append: int | None = None, to_longest: bool = False) -> torch.Tensor:
    """(B, width) item ids: the most recent ``max_len`` items right-aligned, 0 on the left.

    ``append`` adds one token after the history (BERT4Rec's mask), keeping ``max_len`` in total.
    ``width`` is ``max_len``, or with ``to_longest`` the longest row's (at least 1).
    """
    extra = 1 if append is not None else 0
    lengths = np.minimum(history.lengths(), max_len - extra)
    width = max_len
    if to_longest:
        width = max(int(lengths.max(initial=0)) + extra, 1)
    room = width - extra
    out = np.zeros((len(history), width), dtype=np.int64)
    ends = history.offsets[1:]
    for row in range(len(history)):
        n = lengths[row]
        if n:
            out[row, room - n : room] = history.values[ends[row] - n : ends[row]]
    if append is not None:
        out[:, -1] = append
    return torch.from_numpy(out)


class Backbone(nn.Module):
    """Subclasses implement :meth:`encode`; everything else (scoring, user vectors) is shared."""

    config_class = BackboneConfig
    #: "causal": position t predicts item t+1; "cloze": masked positions predict themselves.
    objective = "causal"
    extra_tokens = 0

    def __init__(self, config: BackboneConfig, items: ItemEmbedding, state_hook: StateHook | None = None):
        super().__init__()
        self.config = config
        self.items = items
        # Registered right after the items: the parameter order (optimizer state, gradient-norm sums)
        # stays that of runs whose hook lived inside the item embedding.
        self.state_hook: StateHook | None = state_hook if state_hook is not None else items.state_hook()

    @property
    def n_items(self) -> int:
        return self.items.n_items

    def encode(self, seqs: torch.Tensor) -> torch.Tensor:
        """(B, L) left-padded ids -> (B, L, hidden) states."""
        raise NotImplementedError

    def forward(self, seqs: torch.Tensor, users: torch.Tensor | None = None) -> torch.Tensor:
        # Training goes through forward so DistributedDataParallel can hook it.
        return self.adjust_states(self.encode(seqs), seqs, users)

    def adjust_states(self, states: torch.Tensor, seqs: torch.Tensor, users=None) -> torch.Tensor:
        """The states that score items: the state hook's output, or the encoder's states without one.
        ``users`` are user indices (None, or ids outside the table, mean unknown users)."""
        return states if self.state_hook is None else self.state_hook(states, seqs, users)

    @property
    def bypasses_encoder(self) -> bool:
        """True when the state hook replaces the encoder's states (some encoder parameters get no gradient)."""
        return self.state_hook is not None and self.state_hook.bypasses_backbone

    def inference_input(self, history: Ragged, to_longest: bool = True) -> torch.Tensor:
        """Left-padded ids of ``history``: cut to the longest row, or (``to_longest=False``) ``max_len`` wide."""
        return left_pad(history, self.config.max_len, to_longest=to_longest)

    def user_vectors(self, history: Ragged, users=None) -> torch.Tensor:
        """The state that scores the next item: the last position's state (after the per-user hook)."""
        seqs = self.inference_input(history)
        return self.adjust_states(self.encode(seqs), seqs, users)[:, -1, :]

    def hidden_states(self, history: Ragged) -> torch.Tensor:
        """Per-position states (B, max_len, hidden) of the left-padded histories, for interpretation methods."""
        return self.encode(self.inference_input(history, to_longest=False))

    def item_table(self) -> torch.Tensor:
        return self.items.table()


def make_backbone(name: str, params: dict | None, items: ItemEmbedding, state_hook: StateHook | None = None) -> Backbone:
    """The registered backbone ``name`` over ``items``; ``state_hook`` defaults to the one the items bring."""
    cls = BACKBONES.get(name)
    config = validate_config(cls.config_class, params, f"model '{name}'")
    return cls(config, items, state_hook)


def backbone_config(name: str, params: dict | None) -> BackboneConfig:
    cls = BACKBONES.get(name)
    return validate_config(cls.config_class, params, f"model '{name}'")
