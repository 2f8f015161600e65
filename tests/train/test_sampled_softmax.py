"""Sampled softmax: logQ-corrected logits by hand, accidental hits, equality with the full softmax, bad input."""

import logging
import math

import numpy as np
import pytest
import torch

from lucidrec.config import ConfigError
from lucidrec.embeddings.frozen_table import FrozenTableEmbedding
from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.train.losses import full_softmax_loss, next_item_loss, sampled_softmax_loss
from lucidrec.train.negatives import NegativeSampler, SampledSoftmaxConfig
from lucidrec.train.run import build_config

# Items 1..4 (row 0 is padding); item 4 was never seen in training.
TABLE = torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0], [-1.0, 0.5]])
COUNTS = np.array([0, 6, 3, 1, 0])


def _items():
    items = IdEmbedding(n_items=4, dim=2)
    with torch.no_grad():
        items.weight.weight.copy_(TABLE)
    return items


def _ce(logits, target_index=0):
    return -logits[target_index] + math.log(sum(math.exp(v) for v in logits if v != -math.inf))


def test_popularity_log_q_by_hand_with_the_unseen_item_at_the_minimum_probability(caplog):
    config = SampledSoftmaxConfig(negatives="popularity", alpha=1.0)
    with caplog.at_level(logging.WARNING):
        sampler = NegativeSampler(config, n_items=4, n_negatives=3, item_counts=COUNTS)
    said = [r.getMessage() for r in caplog.records if "no training count" in r.getMessage()]
    assert len(said) == 1 and "1 of 4 items" in said[0]
    # Weights count^1 = 6, 3, 1 and the unseen item the smallest of those, 1: total 11.
    probabilities = {1: 6 / 11, 2: 3 / 11, 3: 1 / 11, 4: 1 / 11}
    caplog.clear()
    seen = set()
    generator = torch.Generator().manual_seed(0)
    for _ in range(200):
        items, log_q = sampler.draw(torch.tensor([1]), generator)
        assert len(items) == 3
        for item, value in zip(items.tolist(), log_q.tolist()):
            assert value == pytest.approx(math.log(3 * probabilities[item]), rel=1e-6)
            seen.add(item)
    assert seen == {1, 2, 3, 4} and not caplog.records  # the warning is said once, not per batch


def test_popularity_exponent_reshapes_the_probabilities():
    sampler = NegativeSampler(SampledSoftmaxConfig(negatives="popularity", alpha=0.5), 4, 2, COUNTS)
    weights = np.array([6, 3, 1, 1]) ** 0.5
    assert torch.allclose(sampler.probabilities, torch.as_tensor(weights / weights.sum()))


def test_logq_corrected_logits_and_accidental_hits_by_hand():
    states = torch.tensor([[2.0, 0.0], [0.5, 1.0]])
    targets = torch.tensor([1, 2])
    negatives = torch.tensor([2, 4, 2])
    log_q = torch.tensor([math.log(0.8), math.log(0.3), math.log(0.8)])
    loss = sampled_softmax_loss(states, targets, _items(), negatives, log_q)
    s = (states @ TABLE.T).tolist()
    # Row 0 (target 1): the positive uncorrected, every negative minus its log_q.
    row0 = [s[0][1], s[0][2] - math.log(0.8), s[0][4] - math.log(0.3), s[0][2] - math.log(0.8)]
    # Row 1 (target 2): both draws of item 2 are accidental hits, masked out.
    row1 = [s[1][2], -math.inf, s[1][4] - math.log(0.3), -math.inf]
    assert loss.item() == pytest.approx((_ce(row0) + _ce(row1)) / 2, rel=1e-6)


def test_an_accidental_hit_gets_no_gradient_as_a_negative():
    states = torch.tensor([[0.5, 1.0]], requires_grad=True)
    items = _items()
    loss = sampled_softmax_loss(states, torch.tensor([2]), items, torch.tensor([2, 4]), torch.zeros(2))
    loss.backward()
    s = (states.detach() @ TABLE.T)[0]
    # Only items 2 (positive) and 4 share the softmax: d/d state = -(1 - p2) e2 + p4 e4.
    p2 = math.exp(s[2]) / (math.exp(s[2]) + math.exp(s[4]))
    expected = -(1 - p2) * TABLE[2] + (1 - p2) * TABLE[4]
    assert torch.allclose(states.grad[0], expected, atol=1e-6)


def test_in_batch_negatives_are_the_batch_targets_with_their_inclusion_probability():
    config = SampledSoftmaxConfig(negatives="in_batch")
    sampler = NegativeSampler(config, n_items=4, n_negatives=256, item_counts=COUNTS)  # N plays no part
    targets = torch.tensor([1, 2, 1])
    items, log_q = sampler.draw(targets, torch.Generator())
    assert items.tolist() == [1, 2]
    p = {1: 0.6, 2: 0.3}  # training frequencies 6/10 and 3/10
    assert log_q.tolist() == pytest.approx([math.log(1 - (1 - p[i]) ** 3) for i in (1, 2)], rel=1e-6)
    states = torch.tensor([[2.0, 0.0], [0.5, 1.0], [1.0, 1.0]])
    loss = next_item_loss("sampled_softmax", states, targets, _items(), 4, 256, torch.Generator(), sampler=sampler)
    s = (states @ TABLE.T).tolist()
    lq = {i: math.log(1 - (1 - p[i]) ** 3) for i in (1, 2)}
    rows = [[s[0][1], -math.inf, s[0][2] - lq[2]], [s[1][2], s[1][1] - lq[1], -math.inf],
            [s[2][1], -math.inf, s[2][2] - lq[2]]]
    assert loss.item() == pytest.approx(sum(map(_ce, rows)) / 3, rel=1e-6)


def _id_items(n_items, dim):
    return IdEmbedding(n_items=n_items, dim=dim)


def _text_items(n_items, dim):
    # A frozen "text" matrix behind a trainable adapter, plus an id residual: vectors are computed, not looked up.
    matrix = torch.randn(n_items + 1, 7)
    matrix[0] = 0
    return FrozenTableEmbedding(matrix, dim, residual_id=True, activation="gelu")


@pytest.mark.parametrize("make_items", [_id_items, _text_items], ids=["id", "frozen_text_adapter"])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gradient_equals_full_softmax_when_the_draw_is_the_whole_catalog(seed, make_items):
    # Uniform without replacement, N = catalog: every item drawn exactly once, log_q = log(N / N) = 0, and the
    # positive's own draw masked (it is the first column): the same softmax as the full one, term for term.
    torch.manual_seed(seed)
    n_items, dim = 12, 5
    items = make_items(n_items, dim)
    parameters = [p for p in items.parameters() if p.requires_grad]
    states = torch.randn(20, dim, requires_grad=True)
    targets = torch.randint(1, n_items + 1, (20,))
    sampler = NegativeSampler(SampledSoftmaxConfig(replacement=False), n_items, n_items)
    results = []
    for kind in ("sampled_softmax", "full"):
        for tensor in (states, *parameters):
            tensor.grad = None
        if kind == "full":
            loss = full_softmax_loss(states, targets, items.table(), "dense")
        else:
            loss = next_item_loss(kind, states, targets, items, n_items, n_items,
                                  torch.Generator().manual_seed(seed), sampler=sampler)
        loss.backward()
        results.append([loss.detach()] + [t.grad.clone() for t in (states, *parameters)])
    assert len(results[0]) == 2 + len(parameters)
    for sampled, full in zip(*results):
        assert torch.allclose(sampled, full, atol=1e-6)
    # With replacement the same N draws repeat some items and miss others: not the full softmax.
    with_replacement = NegativeSampler(SampledSoftmaxConfig(), n_items, n_items)
    other = next_item_loss("sampled_softmax", states, targets, items, n_items, n_items,
                           torch.Generator().manual_seed(seed), sampler=with_replacement)
    assert not torch.allclose(other.detach(), results[1][0], atol=1e-4)


def test_more_negatives_than_items_is_an_error_naming_both():
    with pytest.raises(ConfigError, match=r"n_negatives=5 is larger than the catalog \(4 items\)"):
        NegativeSampler(SampledSoftmaxConfig(), n_items=4, n_negatives=5)


def test_negative_alpha_and_weighted_draws_without_replacement_are_config_errors():
    with pytest.raises(ConfigError, match="train.sampled_softmax.alpha"):
        build_config({}, None, ["train.loss=sampled_softmax", "train.sampled_softmax.negatives=popularity",
                                "train.sampled_softmax.alpha=-0.5"])
    with pytest.raises(ConfigError, match="replacement=false needs negatives='uniform'"):
        build_config({}, None, ["train.sampled_softmax.negatives=popularity", "train.sampled_softmax.replacement=false"])


def test_no_logq_correction_leaves_the_logits_as_they_are():
    sampler = NegativeSampler(SampledSoftmaxConfig(negatives="popularity", logq_correction=False), 4, 3, COUNTS)
    _, log_q = sampler.draw(torch.tensor([1]), torch.Generator().manual_seed(0))
    assert torch.all(log_q == 0)


def test_a_step_without_the_run_sampler_follows_the_config_or_says_what_it_lacks():
    from lucidrec.models import make_backbone
    from lucidrec.train.trainer import TrainConfig, next_item_step_loss

    model = make_backbone("sasrec", {"hidden": 2, "max_len": 3, "layers": 1}, _items())
    inputs, targets = torch.tensor([[1, 2, 3]]), torch.tensor([[2, 3, 4]])
    config = TrainConfig(loss="sampled_softmax", n_negatives=3, sampled_softmax={"negatives": "popularity"})
    with pytest.raises(ConfigError, match="needs the training counts"):
        next_item_step_loss(model, model, inputs, targets, np.array([0]), config, torch.Generator())
    config = TrainConfig(loss="sampled_softmax", n_negatives=5)
    with pytest.raises(ConfigError, match="larger than the catalog"):
        next_item_step_loss(model, model, inputs, targets, np.array([0]), config, torch.Generator())
