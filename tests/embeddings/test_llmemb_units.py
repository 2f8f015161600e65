"""LLMEmb pieces without a real language model: prompts and views, losses, adapter, gradients, config."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch

from lucidrec.config import ConfigError
from lucidrec.data.dataset import ItemCatalog
from lucidrec.embeddings import EMBEDDINGS
from lucidrec.embeddings.llmemb import LLMEmbConfig, LLMEmbEmbedding
from lucidrec.methods.llmemb.prompts import build_prompts, drop_words, make_view, make_views
from lucidrec.lm.text import attribute_text
from lucidrec.models import make_backbone
from lucidrec.embeddings.contrastive import contrastive_loss, info_nce, soft_contrastive
from lucidrec.train.run import build_config


@pytest.fixture
def catalog():
    return ItemCatalog(pd.DataFrame({
        "item_id": ["a", "b", "c"],
        "title": ["Rose Lip Balm", "Night Cream For Dry Skin", None],
        "brand": ["Acme", None, None],
        "categories": [["Beauty", "Lips"], None, None],
        "color": ["red", None, None],
        "size": ["10 ml", None, None],
    }))


# -- prompts and views ------------------------------------------------------------------------

def test_unaugmented_prompt_is_the_catalog_text_unchanged(catalog):
    config = LLMEmbConfig(prompts={"domain": "beauty item"})
    prompts = build_prompts(catalog, ["a", "b", "c"], config)
    assert prompts.texts[0] == ("The beauty item has the following attributes:\n"
                                "title is Rose Lip Balm; brand is Acme; categories is Beauty, Lips; color is red; size is 10 ml")
    assert prompts.texts[0] == attribute_text(catalog, "a", domain="beauty item")
    assert prompts.texts[2] == "item c" and prompts.segments[2] == []  # no text: fallback, not tuned on
    assert list(prompts.with_text()) == [0, 1]
    custom = build_prompts(catalog, ["b"], LLMEmbConfig(prompts={"domain": "beauty item", "instruction": "Describe this product:"}))
    assert custom.texts == ["Describe this product:\ntitle is Night Cream For Dry Skin"]
    assert build_prompts(catalog, ["b"], LLMEmbConfig()).texts == ["title is Night Cream For Dry Skin"]
    # building views never modifies the segments the table is encoded from
    before = [list(s) for s in prompts.segments]
    make_views(prompts.segments[0], config, np.random.default_rng(0))
    assert prompts.segments == before


@pytest.mark.parametrize("n, ratio, kept", [(5, 0.4, 3), (3, 0.4, 2), (10, 0.4, 6), (4, 0.5, 2), (5, 0.0, 5)])
def test_view_drops_floor_ratio_n_attributes(n, ratio, kept):
    segments = [f"k{i} is v{i}" for i in range(n)]
    view = make_view(segments, ratio, np.random.default_rng(1), word_fallback=True)
    assert len(view) == kept == n - math.floor(ratio * n)
    assert set(view) <= set(segments) and len(set(view)) == len(view)  # whole attributes, no duplicates


def test_views_are_seeded_shuffled_and_differ():
    config = LLMEmbConfig()
    segments = [f"key{i} is value{i}" for i in range(6)]
    first = make_views(segments, config, np.random.default_rng(7))
    assert first == make_views(segments, config, np.random.default_rng(7))  # same seed, same views
    assert first != make_views(segments, config, np.random.default_rng(8))
    a, b = first
    assert a != b  # the two views of one item differ
    orders = {tuple(make_view(segments, 0.0, np.random.default_rng(s))) for s in range(10)}
    assert len(orders) > 1  # ratio 0 still shuffles


def test_word_dropout_fallback_only_when_no_attribute_would_be_dropped():
    single = ["title is one two three four five"]  # floor(0.4 * 1) = 0 attributes dropped
    view = make_view(single, 0.4, np.random.default_rng(0), word_fallback=True)
    assert view[0].startswith("title is ") and len(view[0].split()) - 2 == 5 - math.floor(0.4 * 5)
    assert make_view(single, 0.4, np.random.default_rng(0), word_fallback=False) == single  # paper-only
    assert drop_words("title is solo", 0.9, np.random.default_rng(0)) == "title is solo"  # keeps one word
    five = [f"k{i} is a b c d e" for i in range(5)]  # attribute dropout applies: words untouched
    assert all(v.endswith("a b c d e") for v in make_view(five, 0.4, np.random.default_rng(0)))


def test_title_form():
    catalog = ItemCatalog(pd.DataFrame({"item_id": ["x"], "title": ["Gorilla Glue Original"], "brand": ["G"]}))
    prompts = build_prompts(catalog, ["x"], LLMEmbConfig(prompts={"text_form": "title"}))
    assert prompts.texts == ["Gorilla Glue Original"] and prompts.segments == [["Gorilla Glue Original"]]


# -- losses, checked by hand ----------------------------------------------------------------

X = torch.tensor([[1.0, 0.0], [0.0, 1.0]])
Y = torch.tensor([[1.0, 0.0], [1.0, 0.0]])


def test_infonce_by_hand():
    # logits = x̂ ŷᵀ / 0.5 = [[2, 2], [0, 0]]; targets = diagonal.
    forward = (math.log(2) + math.log(2)) / 2  # row 0: -log(e²/2e²); row 1: -log(1/2)
    # transposed logits [[2, 0], [2, 0]]: row 0 -log(e²/(e²+1)), row 1 -log(1/(e²+1))
    backward = (math.log(1 + math.exp(-2)) + math.log(1 + math.exp(2))) / 2
    assert info_nce(X, Y, 0.5).item() == pytest.approx((forward + backward) / 2, abs=1e-6)
    assert info_nce(X, Y, 0.5, symmetric=False).item() == pytest.approx(forward, abs=1e-6)
    # normalisation: scaling the rows changes nothing
    assert info_nce(3 * X, 5 * Y, 0.5).item() == pytest.approx((forward + backward) / 2, abs=1e-6)
    assert contrastive_loss("infonce", X, Y, 0.5).item() == pytest.approx((forward + backward) / 2, abs=1e-6)


def test_soft_contrastive_by_hand():
    # τ = 1: logits = x yᵀ = [[1, 1], [0, 0]]; (x xᵀ + y yᵀ)/2 = [[1, .5], [.5, 1]]
    p = math.exp(1) / (math.exp(1) + math.exp(0.5))  # soft target on the diagonal
    targets = [[p, 1 - p], [1 - p, p]]
    forward = (math.log(2) + math.log(2)) / 2  # rows of equal logits: -Σ t log(1/2) = log 2
    ls = [-math.log(1 + math.exp(-1)), -math.log(1 + math.exp(1))]  # log_softmax([1, 0])
    backward = (-(targets[0][0] * ls[0] + targets[0][1] * ls[1]) - (targets[1][0] * ls[0] + targets[1][1] * ls[1])) / 2
    expected = (forward + backward) / 2
    assert expected == pytest.approx(0.753204, abs=1e-6)
    assert soft_contrastive(X, Y, 1.0).item() == pytest.approx(expected, abs=1e-6)
    assert contrastive_loss("soft", X, Y, 1.0).item() == pytest.approx(expected, abs=1e-6)


def test_infonce_masks_copies_of_the_positive_by_hand():
    """Pairs (a, b), (c, b), (d, e): b twice. Row 0's column 1 (and row 1's column 0) is b again: no negative."""
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0]])  # a, c, d
    y = torch.tensor([[1.0, 0.0], [1.0, 0.0], [0.0, 1.0]])  # b, b, e
    x_keys, y_keys = torch.tensor([0, 2, 3]), torch.tensor([1, 1, 4])
    e = math.e
    # logits x yᵀ = [[1, 1, 0], [0, 0, 1], [1, 1, 0]]; forward with [0, 1] and [1, 0] masked:
    forward = (math.log(1 + 1 / e) + math.log(1 + e) + math.log(2 * e + 1)) / 3
    # transposed [[1, 0, 1], [1, 0, 1], [0, 1, 0]]; x has no copies, nothing masked
    backward = (math.log(2 + 1 / e) + math.log(2 * e + 1) + math.log(e + 2)) / 3
    masked = info_nce(x, y, 1.0, x_keys=x_keys, y_keys=y_keys)
    assert masked.item() == pytest.approx((forward + backward) / 2, abs=1e-6)
    unmasked_row0 = math.log(2 + 1 / e)  # b's copy counted as a negative: the old loss, higher
    assert info_nce(x, y, 1.0).item() == pytest.approx(
        ((unmasked_row0 + math.log(2 + e) + math.log(2 * e + 1)) / 3 + backward) / 2, abs=1e-6)
    assert contrastive_loss("infonce", x, y, 1.0, x_keys=x_keys, y_keys=y_keys).item() == pytest.approx(masked.item())
    with pytest.raises(ValueError, match="y_keys needs one key per row"):
        info_nce(x, y, 1.0, y_keys=torch.tensor([1, 1]))


def test_soft_contrastive_masks_copies_of_the_positive_by_hand():
    # X, Y of the hand check above; Y's two rows are one item: forward, each row keeps its diagonal only (target 1,
    # log-probability 0); backward (x has no copies) is the unmasked one.
    ls = [-math.log(1 + math.exp(-1)), -math.log(1 + math.exp(1))]
    p = math.exp(1) / (math.exp(1) + math.exp(0.5))
    backward = (-(p * ls[0] + (1 - p) * ls[1]) - ((1 - p) * ls[0] + p * ls[1])) / 2
    loss = soft_contrastive(X, Y, 1.0, x_keys=torch.tensor([0, 1]), y_keys=torch.tensor([5, 5]))
    assert loss.item() == pytest.approx((0.0 + backward) / 2, abs=1e-6)
    # and the gradient stays finite through the -inf logits
    x, y = X.clone().requires_grad_(), Y.clone().requires_grad_()
    soft_contrastive(x, y, 1.0, x_keys=torch.tensor([0, 1]), y_keys=torch.tensor([5, 5])).backward()
    assert torch.isfinite(x.grad).all() and torch.isfinite(y.grad).all()
    xi, yi = X.clone().requires_grad_(), Y.clone().requires_grad_()
    info_nce(xi, yi, 1.0, x_keys=torch.tensor([0, 1]), y_keys=torch.tensor([5, 5])).backward()
    assert torch.isfinite(xi.grad).all() and torch.isfinite(yi.grad).all()


def test_tuning_batches_key_their_rows_by_item_text():
    from lucidrec.methods.llmemb.prompts import ItemPrompts
    from lucidrec.methods.llmemb.scft import batch_keys, has_duplicate_texts, text_keys

    # items 1..4 (prompt rows 0..3); items 2 and 4 have identical text, item 3 none
    prompts = ItemPrompts(["a", "b", "c", "d"], [["Red soap"], ["Lip balm"], [], ["Lip balm"]],
                          ["Red soap", "Lip balm", "item c", "Lip balm"], "")
    keys = text_keys(prompts)
    assert keys[1] == keys[3] and len({keys[0], keys[1], keys[2]}) == 3
    assert has_duplicate_texts(prompts)
    assert not has_duplicate_texts(ItemPrompts(["a", "b"], [["x"], ["y"]], ["x", "y"], ""))
    # SCFT batch of prompt rows: both sides keyed by the rows' texts
    x_keys, y_keys = batch_keys(keys, np.array([0, 1, 3]), None)
    assert x_keys.tolist() == y_keys.tolist() == [keys[0], keys[1], keys[1]]
    # interaction batch: pair rows of (item, next item), 1-based items; next items 2 and 4 share a text
    pairs = np.array([[1, 2], [3, 4], [2, 1]])
    x_keys, y_keys = batch_keys(keys, np.array([0, 1, 2]), pairs)
    assert x_keys.tolist() == [keys[0], keys[2], keys[1]] and y_keys.tolist() == [keys[1], keys[1], keys[0]]


def test_the_tuned_encoders_key_says_false_negatives_are_masked_only_where_it_changed_anything():
    from lucidrec.methods import artifacts
    from lucidrec.methods.llmemb.interactions import pairs_digest
    from lucidrec.methods.llmemb.prompts import ItemPrompts
    from lucidrec.methods.llmemb.table import scft_key

    config = LLMEmbConfig()
    unique = ItemPrompts(["a", "b"], [["x"], ["y"]], ["x", "y"], "")
    duplicated = ItemPrompts(["a", "b"], [["x"], ["x"]], ["x", "x"], "")
    pairs = np.array([[1, 2]])
    assert scft_key(config, "enc", unique) == artifacts.content_key(
        {"kind": "scft", "encoder": "enc", "scft": config.scft_fields(), "prompts": unique.digest()})  # as before
    assert scft_key(config, "enc", duplicated) == artifacts.content_key(
        {"kind": "scft", "encoder": "enc", "scft": config.scft_fields(), "prompts": duplicated.digest(),
         "false_negatives": "masked"})
    assert scft_key(config, "enc", unique, pairs) == artifacts.content_key(
        {"kind": "scft", "encoder": "enc", "scft": config.scft_fields(), "prompts": unique.digest(),
         "tuning": "interactions", "pairs": pairs_digest(pairs), "false_negatives": "masked"})


def test_soft_contrastive_learnable_temperature_gets_a_gradient():
    tau = torch.nn.Parameter(torch.tensor(3.0))
    soft_contrastive(torch.randn(4, 3), torch.randn(4, 3), tau).backward()
    assert tau.grad is not None and tau.grad.item() != 0
    with pytest.raises(ValueError):
        info_nce(torch.zeros(2, 3), torch.zeros(3, 3))


# -- RAT: adapter and alignment ---------------------------------------------------------------

def _module(n_items=6, big=8, dim=4, extra=0, cf=True, **kw):
    g = torch.Generator().manual_seed(0)
    matrix = torch.randn(n_items + 1, big, generator=g).numpy()
    matrix[0] = 0
    collaborative = torch.randn(n_items + 1, dim, generator=g).numpy() if cf else None
    return LLMEmbEmbedding(matrix, dim, extra, collaborative=collaborative, **kw)


def test_registered_and_adapter_shapes_with_bert4rec_mask_row():
    assert EMBEDDINGS.get("llmemb") is LLMEmbEmbedding
    items = _module(extra=1)
    assert items.frozen.shape == (8, 8) and torch.all(items.frozen[0] == 0) and torch.all(items.frozen[7] == 0)
    linear = [m for m in items.adapter if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(8, 4), (4, 4)]  # D -> D/2 -> d
    assert all(isinstance(m, (torch.nn.Linear, torch.nn.Dropout)) for m in items.adapter)  # no non-linearity
    assert items(torch.tensor([[0, 3, 7]])).shape == (1, 3, 4)  # 7 = the mask token
    assert items.table().shape == (7, 4)
    mask_vector = items(torch.tensor([7]))[0]
    assert torch.allclose(mask_vector, items.adapter(torch.zeros(8)))  # only the adapter maps the mask row
    assert _module(hidden=5).adapter[0].out_features == 5
    bert = make_backbone("bert4rec", {"hidden": 4, "max_len": 5, "heads": 1}, _module(extra=1))
    assert bert.mask_token == 7 and bert.encode(torch.tensor([[0, 1, 2, 7, 7]])).shape == (1, 5, 4)


def test_alignment_gradients_reach_only_the_adapter():
    items = _module()
    backbone = make_backbone("sasrec", {"hidden": 4, "max_len": 5, "heads": 1}, items)
    frozen_before, cf_before = items.frozen.clone(), items.collaborative.clone()
    assert not items.frozen.requires_grad and not items.collaborative.requires_grad
    names = {name for name, _ in backbone.named_parameters()}
    assert not any("frozen" in n or "collaborative" in n for n in names)

    targets = torch.tensor([1, 2, 3, 3, 5, 0])
    aux = items.auxiliary_loss(targets)
    assert aux is not None
    aux.backward()
    for name, p in backbone.named_parameters():
        if name.startswith("items.adapter"):
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        else:
            assert p.grad is None, name  # the alignment term never touches the backbone

    # a full step (recommendation + alignment) updates adapter and backbone, never the tables
    optimizer = torch.optim.Adam(backbone.parameters(), lr=0.1)
    states = backbone(torch.tensor([[0, 1, 2, 3, 4]]))
    loss = (states[0] @ items.table().T).logsumexp(-1).mean() + items.auxiliary_loss(targets)
    loss.backward()
    optimizer.step()
    assert items.frozen.grad is None and items.collaborative.grad is None
    assert torch.equal(items.frozen, frozen_before) and torch.equal(items.collaborative, cf_before)


def test_alignment_value_weighting_and_subsampling():
    items = _module(align_weight=0.5, align_temperature=2.0)
    ids = torch.tensor([1, 2, 4])
    expected = soft_contrastive(items.collaborative[ids], items(ids), 2.0)
    assert items.alignment_loss(torch.tensor([0, 1, 2, 4])).item() == pytest.approx(expected.item(), rel=1e-6)
    assert items.auxiliary_loss(ids).item() == pytest.approx(0.5 * expected.item(), rel=1e-6)
    assert _module(cf=False).auxiliary_loss(ids) is None  # frozen / no_align variants
    assert _module(align_weight=0.0).auxiliary_loss(ids) is None
    assert items.auxiliary_loss(torch.tensor([3])) is None  # one item has no negatives
    capped = _module(align_max_items=2, align_temperature=2.0)
    five = torch.tensor([1, 2, 3, 4, 5])
    torch.manual_seed(0)
    subset = five[torch.randperm(5)[:2]]  # the draw alignment_loss makes under the same seed
    torch.manual_seed(0)
    loss = capped.alignment_loss(five)
    assert loss.item() == pytest.approx(soft_contrastive(capped.collaborative[subset], capped(subset), 2.0).item(), rel=1e-6)
    uncapped = soft_contrastive(capped.collaborative[five], capped(five), 2.0)
    assert loss.item() != pytest.approx(uncapped.item(), rel=1e-3)  # the cap really drops items


def test_residual_id_adds_a_trainable_id_vector_that_alignment_and_training_reach():
    items = _module(extra=1, residual_id=True)
    ids = torch.tensor([0, 1, 5, 7])
    expected = items.adapter(items.frozen[ids]) + items.residual.weight.weight[ids]
    assert torch.allclose(items(ids), expected)
    assert torch.allclose(items.table(), items(torch.arange(7)))
    assert torch.equal(items.residual.weight.weight[0], torch.zeros(4))  # padding keeps the adapter's bias path only
    assert torch.allclose(items(torch.tensor([0])), items.adapter(items.frozen[[0]]))
    assert not torch.allclose(items(ids[1:3]), items.adapter(items.frozen[ids[1:3]]))
    items.auxiliary_loss(torch.tensor([1, 2, 3])).backward()  # the alignment pulls the id vectors toward E_cf too
    grad = items.residual.weight.weight.grad
    assert grad[[1, 2, 3]].abs().sum() > 0 and grad[[0, 4, 5, 6]].abs().sum() == 0
    assert items.frozen.grad is None
    config = build_config({"embedding": {"name": "llmemb", "id_part": {"enabled": True}}})
    assert config.embedding["id_part"]["enabled"] is True
    # The tables do not depend on it: runs made before the option keep the key of their table copy.
    from types import SimpleNamespace

    from lucidrec.methods.llmemb.recipe import chain_key
    data = SimpleNamespace(data_hash="h")
    keys = {chain_key(LLMEmbConfig(variant="frozen", id_part={"enabled": flag}), data, 4, None) for flag in (False, True)}
    assert len(keys) == 1
    assert "residual_id" in EMBEDDINGS.get("frozen").config_class.model_fields


def test_table_scaling_reaches_the_adapter_input_and_not_the_table_key():
    from types import SimpleNamespace

    from lucidrec.embeddings.frozen_table import scale_table
    from lucidrec.methods.llmemb.recipe import chain_key

    raw, standardized = _module(extra=1), _module(extra=1, table_scaling="standardized")
    assert torch.allclose(standardized.frozen[:7], scale_table(raw.frozen[:7], "standardized"))
    assert torch.equal(standardized.frozen[7], torch.zeros(8))  # the mask row stays on the bias path
    assert torch.equal(raw.collaborative, standardized.collaborative)  # E_cf is never rescaled
    data = SimpleNamespace(data_hash="h")
    keys = {chain_key(LLMEmbConfig(variant="frozen", table={"scaling": s}), data, 4, None) for s in ("raw", "standardized")}
    assert len(keys) == 1  # the stored table is the raw one; scaling happens when the module is built
    assert build_config({"embedding": {"name": "llmemb", "table": {"scaling": "centered"}}}).embedding["table"]["scaling"] == "centered"


def test_gelu_adapter_is_nonlinear_and_the_default_stays_linear():
    linear, gelu = _module(), _module(adapter_activation="gelu")
    assert not any(isinstance(m, torch.nn.GELU) for m in linear.adapter)
    assert [type(m).__name__ for m in gelu.adapter] == ["Linear", "GELU", "Dropout", "Linear"]
    a, b = gelu.frozen[1], gelu.frozen[2]
    midpoint = gelu.adapter((a + b) / 2)
    assert not torch.allclose(midpoint, (gelu.adapter(a) + gelu.adapter(b)) / 2, atol=1e-4)
    assert torch.allclose(linear.adapter((a + b) / 2), (linear.adapter(a) + linear.adapter(b)) / 2, atol=1e-5)


def test_wrong_collaborative_shape_is_a_clear_error():
    with pytest.raises(ConfigError, match="E_cf"):
        LLMEmbEmbedding(np.zeros((5, 8), np.float32), 4, collaborative=np.zeros((5, 3), np.float32))


def test_config_is_strict_and_fills_defaults():
    config = build_config({"embedding": {"name": "llmemb", "variant": "no_align"}})
    assert config.embedding["tuning"]["dropout_ratio"] == 0.4 and config.embedding["prompts"]["max_seq_length"] == 64
    assert config.embedding["tuning"]["batch_size"] == 64 and config.embedding["tuning"]["epochs"] == 1
    with pytest.raises(ConfigError, match="embedding 'llmemb': unknown key 'dropout'"):
        build_config({"embedding": {"name": "llmemb", "dropout": 0.4}})
    with pytest.raises(ConfigError):
        build_config({"embedding": {"name": "llmemb", "variant": "half"}})
    assert LLMEmbConfig(tuning={"loss": "soft"}).tuning.effective_temperature() == 3.0
    assert LLMEmbConfig().tuning.effective_temperature() == 0.05
    assert not LLMEmbConfig(variant="frozen").needs_scft and not LLMEmbConfig(variant="no_align").needs_alignment
