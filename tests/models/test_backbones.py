import numpy as np
import pytest
import torch

from lucidrec.config import ConfigError
from lucidrec.data.sequences import Ragged
from lucidrec.embeddings import make_item_embedding
from lucidrec.embeddings.frozen_table import FrozenTableEmbedding
from lucidrec.errors import UnknownNameError
from lucidrec.models import BACKBONES, make_backbone
from lucidrec.models.backbone import left_pad

N_ITEMS = 20


def build(name, **params):
    cls = BACKBONES.get(name)
    items = make_item_embedding("id", {}, n_items=N_ITEMS, dim=16, extra_tokens=cls.extra_tokens)
    model = make_backbone(name, {"hidden": 16, "max_len": 8, **params}, items)
    return model.eval()


@pytest.mark.parametrize("name", ["sasrec", "gru4rec", "caser"])
def test_no_position_sees_the_future(name):
    torch.manual_seed(0)
    model = build(name, **({"heads": 2} if name == "sasrec" else {}))
    seqs = torch.tensor([[0, 0, 3, 5, 7, 9, 11, 13]])
    changed = seqs.clone()
    changed[0, 5:] = torch.tensor([2, 4, 6])  # rewrite the last three items
    with torch.no_grad():
        before, after = model.encode(seqs), model.encode(changed)
    assert torch.allclose(before[0, :5], after[0, :5], atol=1e-6)
    assert not torch.allclose(before[0, 5:], after[0, 5:])


def test_sasrec_without_causal_mask_leaks_the_future():
    torch.manual_seed(0)
    model = build("sasrec", causal=False)
    seqs = torch.tensor([[0, 0, 3, 5, 7, 9, 11, 13]])
    changed = seqs.clone()
    changed[0, -1] = 2
    with torch.no_grad():
        assert not torch.allclose(model.encode(seqs)[0, 3], model.encode(changed)[0, 3])


def test_padding_does_not_change_states():
    torch.manual_seed(0)
    for name in ("sasrec", "gru4rec", "bert4rec", "caser"):
        model = build(name)
        short = Ragged.from_lists([[4, 6, 8]])
        with torch.no_grad():
            a = model.encode(left_pad(short, 8))[0, -3:]
            model.config.max_len = 5
            b = model.encode(left_pad(short, 5))[0, -3:]
            model.config.max_len = 8
        # Positions embeddings are tied to the right end, so the real items see the same context.
        assert torch.allclose(a, b, atol=1e-5), name


def test_left_pad_truncates_from_the_left_and_appends_mask():
    history = Ragged.from_lists([[1, 2, 3, 4, 5], [7]])
    assert left_pad(history, 3).tolist() == [[3, 4, 5], [0, 0, 7]]
    assert left_pad(history, 3, append=99).tolist() == [[4, 5, 99], [0, 7, 99]]


def test_bert4rec_scores_from_an_appended_mask_token():
    model = build("bert4rec")
    assert model.extra_tokens == 1 and model.mask_token == N_ITEMS + 1
    assert model.items.weight.weight.shape[0] == N_ITEMS + 2
    assert model.item_table().shape[0] == N_ITEMS + 1  # the mask token is never scored
    vectors = model.user_vectors(Ragged.from_lists([[1, 2], [3]]))
    assert vectors.shape == (2, 16)


def test_registry_and_config_errors_list_valid_choices():
    with pytest.raises(UnknownNameError, match="bert4rec, caser, gru4rec, sasrec"):
        BACKBONES.get("sasrek")
    with pytest.raises(ConfigError, match="unknown key 'hiden'.*valid keys:.*hidden"):
        build("sasrec", hiden=3)


def test_frozen_table_is_frozen_and_adapter_trains():
    matrix = np.random.default_rng(0).normal(size=(N_ITEMS + 1, 12)).astype(np.float32)
    items = FrozenTableEmbedding(matrix, dim=16, hidden=8)
    model = make_backbone("gru4rec", {"hidden": 16, "max_len": 8}, items)
    frozen_before = items.frozen.clone()
    adapter_before = [p.detach().clone() for p in items.adapter.parameters()]
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    states = model(torch.tensor([[0, 1, 2, 3]]))
    loss = (states[:, -1] @ model.item_table().T)[0, 4].neg()
    loss.backward()
    optimizer.step()
    assert torch.equal(items.frozen, frozen_before)
    assert all(not torch.equal(a, b) for a, b in zip(adapter_before, items.adapter.parameters()))
    assert not any(p is items.frozen for p in model.parameters())
    assert torch.all(items.frozen[0] == 0)


def test_caser_products_equal_the_convolutions_they_replace():
    """Caser computes its convolutions as matrix products; check them against conv2d itself."""
    import torch.nn.functional as F

    torch.manual_seed(0)
    model = build("caser", window=3, dropout=0.0)
    seqs = torch.tensor([[0, 0, 3, 5, 7, 9, 11, 13], [1, 2, 3, 4, 5, 6, 7, 8]])
    with torch.no_grad():
        states = model.encode(seqs)
        windows = F.pad(seqs, (2, 0)).unfold(1, 3, 1)
        x = model.items(windows).reshape(-1, 1, 3, 16)
        horizontal = [F.relu(F.conv2d(x, conv.weight, conv.bias)).squeeze(3).amax(dim=2) for conv in model.horizontal]
        vertical = F.conv2d(x, model.vertical.weight, model.vertical.bias).reshape(x.shape[0], -1)
        expected = F.relu(model.project(torch.cat([*horizontal, vertical], dim=1))).reshape(2, 8, -1)
        expected = expected * (seqs != 0).unsqueeze(-1)
    assert torch.allclose(states, expected, atol=1e-5)
