import math

import pytest
import torch

from lucidrec.embeddings.id_table import IdEmbedding
from lucidrec.train.losses import full_softmax_loss, next_item_loss


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


def test_sampled_softmax_default_draw_masks_hits_and_corrects_by_the_uniform_rate():
    # Default: n_negatives uniform draws with replacement, each negative's logit minus log(N / catalog).
    state = torch.tensor([[2.0, 0.0]])
    negatives = torch.randint(1, 4, (3,), generator=torch.Generator().manual_seed(1))
    weight = _items().weight.weight.detach()
    scores = [2.0] + [float(state @ weight[n]) - math.log(3 / 3) for n in negatives if n != 1]
    expected = -2.0 + math.log(sum(math.exp(s) for s in scores))
    loss = next_item_loss("sampled_softmax", state, torch.tensor([1]), _items(), 3, 3, torch.Generator().manual_seed(1))
    assert loss.item() == pytest.approx(expected, rel=1e-5)


@pytest.mark.parametrize("chunk_rows", [1, 7, 64])
def test_chunked_softmax_equals_dense_in_loss_and_gradients(chunk_rows):
    # The table comes out of a layer, as LLMEmb's adapter makes it: its gradient must reach the layer.
    torch.manual_seed(0)
    states = torch.randn(50, 8, requires_grad=True)
    layer = torch.nn.Linear(5, 8)
    source = torch.randn(13, 5)
    targets = torch.randint(1, 13, (50,))
    results = {}
    for kind in ("dense", "chunked"):
        states.grad, layer.weight.grad = None, None
        loss = full_softmax_loss(states, targets, layer(source), kind, chunk_rows=chunk_rows)
        (2 * loss).backward()  # a scaled upstream gradient must scale both gradients
        results[kind] = (loss.detach(), states.grad.clone(), layer.weight.grad.clone())
    for dense, chunked in zip(results["dense"], results["chunked"]):
        assert torch.allclose(dense, chunked, atol=1e-6)


def test_chunked_softmax_under_no_grad_computes_the_loss_alone(monkeypatch):
    from lucidrec.train import losses

    seen = []
    original = losses._ChunkedSoftmaxLoss.apply
    monkeypatch.setattr(losses._ChunkedSoftmaxLoss, "apply",
                        lambda states, table, *rest: seen.append(states.requires_grad or table.requires_grad)
                        or original(states, table, *rest))
    states, table = torch.randn(9, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    targets = torch.randint(1, 6, (9,))
    with torch.no_grad():
        loss = full_softmax_loss(states, targets, table, "chunked", chunk_rows=4)
    assert seen == [False]  # so the Function forms no gradients
    assert torch.allclose(loss, full_softmax_loss(states, targets, table, "dense"), atol=1e-6)


def test_chunked_softmax_without_targets_gives_zero_gradients_not_nan():
    # As F.cross_entropy: the mean over no targets is NaN, but the weights must not become NaN.
    states, table = torch.randn(0, 4, requires_grad=True), torch.randn(6, 4, requires_grad=True)
    loss = full_softmax_loss(states, torch.zeros(0, dtype=torch.long), table, "chunked")
    loss.backward()
    assert torch.isnan(loss) and torch.all(table.grad == 0)


def test_chunked_softmax_never_predicts_padding():
    # Row 0 is padding: excluded from the normaliser and given no gradient.
    state = torch.tensor([[2.0, 0.0]])
    table = torch.tensor([[50.0, 0.0], [1.0, 0.0], [0.0, 1.0], [1.0, 1.0]], requires_grad=True)
    loss = full_softmax_loss(state, torch.tensor([1]), table, "chunked")
    loss.backward()
    assert loss.item() == pytest.approx(-math.log(math.exp(2) / (2 * math.exp(2) + 1)))
    assert torch.all(table.grad[0] == 0)


@pytest.mark.parametrize("kind", ["dense", "chunked"])
def test_bfloat16_matrix_products_stay_close_to_float32(kind):
    # train.precision="bfloat16": products in bfloat16, softmax and gradient buffers in float32.
    torch.manual_seed(0)
    states = torch.randn(60, 16, requires_grad=True)
    table = torch.randn(40, 16, requires_grad=True)
    targets = torch.randint(1, 40, (60,))
    results = {}
    for dtype in (torch.float32, torch.bfloat16):
        states.grad, table.grad = None, None
        loss = full_softmax_loss(states, targets, table, kind, chunk_rows=7, matmul_dtype=dtype)
        loss.backward()
        results[dtype] = (loss.detach(), states.grad.clone(), table.grad.clone())
    exact, low = results[torch.float32], results[torch.bfloat16]
    assert all(t.dtype == torch.float32 for t in low)
    assert low[0].item() == pytest.approx(exact[0].item(), rel=1e-2)
    for a, b in zip(exact[1:], low[1:]):
        assert (a - b).norm() / a.norm() < 2e-2
    assert not torch.equal(exact[1], low[1])  # the products really ran in bfloat16
