import math

import pytest
import torch

from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.train.losses import next_item_loss


def _items():
    items = IdEmbedding(n_items=3, dim=2)
    with torch.no_grad():
        items.weight.weight.copy_(torch.tensor([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
    return items


def test_full_cross_entropy_by_hand():
    state = torch.tensor([[2.0, 0.0]])
    # Scores of items 1..3: 2, 0, 2 (padding excluded); target 1.
    loss = next_item_loss("ce", state, torch.tensor([1]), _items(), 3, 0, torch.Generator())
    assert loss.item() == pytest.approx(-math.log(math.exp(2) / (2 * math.exp(2) + 1)))


def test_bce_and_sampled_softmax_by_hand():
    state = torch.tensor([[2.0, 0.0]])
    generator = torch.Generator().manual_seed(0)
    negatives = torch.randint(1, 4, (1, 1), generator=torch.Generator().manual_seed(0))
    neg_score = float(state @ _items().weight.weight[negatives[0, 0]].detach())
    expected = -math.log(1 / (1 + math.exp(-2))) - math.log(1 - 1 / (1 + math.exp(-neg_score)))
    loss = next_item_loss("bce", state, torch.tensor([1]), _items(), 3, 1, generator)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    # Sampled softmax: negatives equal to the target are masked out.
    generator = torch.Generator().manual_seed(1)
    negatives = torch.randint(1, 4, (4,), generator=torch.Generator().manual_seed(1))
    scores = [2.0] + [float(state @ _items().weight.weight[n]) for n in negatives if n != 1]
    expected = -2.0 + math.log(sum(math.exp(s) for s in scores))
    loss = next_item_loss("sampled_softmax", state, torch.tensor([1]), _items(), 3, 4, generator)
    assert loss.item() == pytest.approx(expected, rel=1e-5)
