"""LANE's preference alignment: the weights it keeps are the ones its output is made of; users without
preferences pass through; the deletion test on a constructed model."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lucidrec.data.sequences import Ragged
from lucidrec.embeddings.lane import LaneItemEmbedding, PreferenceAlignment
from lucidrec.embeddings.lane.config import LaneConfig
from lucidrec.explain.lane_deletion import preference_deletion
from lucidrec.models.backbone import Backbone, BackboneConfig


def _hook(dim=8, users=3, p=5, heads=4, seed=0):
    rng = np.random.default_rng(seed)
    prefs = rng.standard_normal((users, p, 6)).astype(np.float32)
    mask = np.ones((users, p), bool)
    mask[1, 3:] = False  # user 1 has 3 phrases
    mask[2] = False  # user 2 has none
    torch.manual_seed(seed)
    return PreferenceAlignment(dim, prefs, mask, heads=heads, dropout=0.5).eval()


def test_the_weights_kept_are_the_ones_the_last_state_is_made_of():
    hook = _hook()
    states, seqs = torch.randn(2, 4, 8), torch.ones(2, 4, dtype=torch.long)
    users = torch.tensor([0, 1])
    out = hook(states, seqs, users)
    per_head = hook.last_head_weights  # (B, H, P)
    assert torch.allclose(hook.last_weights, per_head.mean(dim=1))
    assert torch.allclose(hook.last_weights.sum(dim=1), torch.ones(2), atol=1e-6)
    assert (hook.last_weights[1, 3:] == 0).all()  # masked phrases get no weight
    # Rebuild the last position's output from the kept per-head weights alone.
    keys = hook.preferences[users]
    values = hook.value(keys).view(2, -1, hook.heads, hook.head_dim).transpose(1, 2)  # (B, H, P, dh)
    attended = (per_head[:, :, None, :] @ values).squeeze(2).reshape(2, hook.dim)
    z = hook.norm_attention(hook.out(attended) + states[:, -1])
    rebuilt = hook.norm_out(z + hook.ffn(z))
    assert torch.allclose(rebuilt, out[:, -1], atol=1e-5)
    # ... and other weights would not rebuild it (the check can fail).
    shuffled = per_head.flip(-1)
    wrong = (shuffled[:, :, None, :] @ values).squeeze(2).reshape(2, hook.dim)
    z_wrong = hook.norm_attention(hook.out(wrong) + states[:, -1])
    assert not torch.allclose(hook.norm_out(z_wrong + hook.ffn(z_wrong)), out[:, -1], atol=1e-3)


def test_users_without_preferences_pass_through():
    hook = _hook()
    states, seqs = torch.randn(4, 5, 8), torch.ones(4, 5, dtype=torch.long)
    out = hook(states, seqs, torch.tensor([2, -1, 99, 0]))  # no phrases, unknown, beyond the table, known
    assert torch.equal(out[:3], states[:3])
    assert not torch.allclose(out[3], states[3])
    assert hook.last_aligned.tolist() == [False, False, False, True]
    assert (hook.last_weights[:3] == 0).all()
    assert torch.equal(hook(states, seqs, None), states)


def test_gradients_reach_the_alignment_and_the_states():
    hook = _hook().train()
    states = torch.randn(2, 3, 8, requires_grad=True)
    hook(states, torch.ones(2, 3, dtype=torch.long), torch.tensor([0, 1])).sum().backward()
    assert states.grad is not None and hook.query.weight.grad is not None and hook.key.weight.grad.abs().sum() > 0


class _FixedStates(Backbone):
    """A toy backbone whose state is a fixed vector at every position (the constructed case)."""

    def __init__(self, items, hook, state):
        super().__init__(BackboneConfig(hidden=items.dim, max_len=3), items, hook)
        self.register_buffer("fixed", state)

    def encode(self, seqs):
        return self.fixed.expand(seqs.shape[0], seqs.shape[1], -1).clone()


def _constructed_case():
    """Preference 0 points at the query (highest weight) and carries the recommended item's direction;
    the others are orthogonal to both. Identity projections, no FFN contribution."""
    dim = 8
    eye = torch.eye(dim)
    prefs = np.zeros((1, 4, dim), np.float32)
    prefs[0, 0] = (eye[0] + eye[1]).numpy() / np.sqrt(2)
    prefs[0, 1], prefs[0, 2], prefs[0, 3] = eye[2].numpy(), eye[3].numpy(), eye[4].numpy()
    items = np.zeros((3, dim), np.float32)
    items[1] = eye[1].numpy()  # the recommended item
    items[2] = eye[5].numpy()
    embedding = LaneItemEmbedding(items, preferences=prefs, mask=np.ones((1, 4), bool), config=LaneConfig(heads=1))
    hook = embedding.state_hook()
    with torch.no_grad():
        for layer in (hook.query, hook.key, hook.value, hook.out):
            layer.weight.copy_(eye)
            layer.bias.zero_()
        hook.query.weight.mul_(6.0)  # peaked attention
        hook.ffn.net[-2].weight.zero_()
        hook.ffn.net[-2].bias.zero_()
    return _FixedStates(embedding, None, eye[0] * 0.5)


def test_deletion_of_the_highest_weight_preference_lowers_the_score_most():
    model = _constructed_case()
    history = Ragged.from_lists([[2, 2]])
    result = preference_deletion(model, history, user=0, item=1)
    assert result.top == 0 and result.weights[0] > 2 * result.weights[1:].max()
    assert result.drops[0] > 0
    for other in (1, 2, 3):
        assert result.top_beats(other)
    assert model.state_hook.mask[0].all()  # restored


def test_deletion_detects_a_weighting_that_is_not_faithful():
    """The same case with the query pointing at preference 1: its removal no longer moves the item's score most."""
    model = _constructed_case()
    model.fixed.copy_(torch.eye(8)[2] * 0.5)
    result = preference_deletion(model, Ragged.from_lists([[2, 2]]), user=0, item=1)
    assert result.top == 1
    assert not result.top_beats(0)


def test_heads_must_divide_the_width():
    with pytest.raises(ValueError, match="not divisible by 3 heads"):
        PreferenceAlignment(8, np.zeros((1, 2, 4)), np.ones((1, 2), bool), heads=3)


def test_deletion_summary_counts_wins_and_skips_users_with_one_preference():
    from lucidrec.explain.lane_deletion import deletion_summary

    model = _constructed_case()
    histories = Ragged.from_lists([[2, 2], [2]])
    summary = deletion_summary(model, histories, np.array([0, 0]), np.array([1, 1]))
    assert summary["pairs"] == 2 and summary["rate_top_beats_random"] == 1.0
    assert summary["mean_drop_top"] > summary["mean_drop_random"]
    model.state_hook.mask[0, 1:] = False  # one preference left: nothing to compare with
    assert deletion_summary(model, histories, np.array([0]), np.array([1]))["skipped_fewer_than_two_preferences"] == 1
