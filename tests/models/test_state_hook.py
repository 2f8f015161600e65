"""The backbone's declared state hook: a small module applied to the sequence states before scoring."""

from __future__ import annotations

import numpy as np
import torch
from torch import nn

from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.base import StateHook
from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.models import make_backbone
from lucidrec.train.trainer import scorer_for


class ShiftKnownUsers(StateHook):
    """A toy hook: adds a trainable vector to the states of known users only."""

    def __init__(self, dim: int):
        super().__init__()
        self.shift = nn.Parameter(torch.zeros(dim))

    def forward(self, states, seqs, users=None):
        if users is None:
            return states
        known = torch.as_tensor(np.asarray(users)) >= 0
        return states + self.shift * known[:, None, None].to(states.dtype)


def _model(hook=None):
    torch.manual_seed(0)
    return make_backbone("sasrec", {"hidden": 8, "max_len": 5, "layers": 1, "dropout": 0.0}, IdEmbedding(12, 8), hook)


def test_a_toy_hook_changes_scores_by_exactly_its_shift():
    hook = ShiftKnownUsers(8)
    model, plain = _model(hook).eval(), _model().eval()
    with torch.no_grad():
        hook.shift.copy_(torch.arange(8, dtype=torch.float32) / 10)
    history = Ragged.from_lists([[1, 2, 3], [4, 5]])
    users = np.array([0, -1])  # a known user, and an unknown one the hook leaves alone
    with torch.no_grad():
        hooked = scorer_for(model)
        reference = scorer_for(plain)
        scores = hooked.score(hooked.user_state(history, users), 0, 13)
        without = reference.score(reference.user_state(history, users), 0, 13)
    table = plain.item_table().detach()
    torch.testing.assert_close(scores[0], without[0] + table @ hook.shift.detach())
    torch.testing.assert_close(scores[1], without[1])


def test_the_hook_is_a_registered_trainable_part_of_the_backbone():
    hook = ShiftKnownUsers(8)
    model = _model(hook)
    assert model.state_hook is hook and "state_hook.shift" in dict(model.named_parameters())
    assert "state_hook.shift" in model.state_dict() and not model.bypasses_encoder
    states = model(torch.tensor([[0, 1, 2, 3, 4]]), torch.tensor([3]))  # the trainer's call
    (states @ model.item_table().T).logsumexp(-1).sum().backward()
    assert hook.shift.grad is not None and hook.shift.grad.abs().sum() > 0


def test_without_a_hook_the_states_are_the_encoders():
    model = _model().eval()
    seqs = torch.tensor([[0, 1, 2, 3, 4]])
    assert model.state_hook is None
    torch.testing.assert_close(model(seqs, torch.tensor([0])), model.encode(seqs))
