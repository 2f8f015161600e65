"""LiGR blocks (the eSASRec recipe's SASRec option) and the named presets that select them."""

import json

import pytest
import torch
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.embeddings import make_item_embedding
from lucidrec.errors import UnknownNameError
from lucidrec.models import make_backbone
from lucidrec.models.sasrec import LiGRBlock, TransformerBlock, attention_mask
from lucidrec.train.presets import preset_names
from lucidrec.train.run import build_config
from tests.synthetic import write_cyclic


def _sasrec(**params):
    torch.manual_seed(0)
    items = make_item_embedding("id", {}, n_items=20, dim=16, extra_tokens=0)
    return make_backbone("sasrec", {"hidden": 16, "max_len": 8, "block": "ligr", "ffn_multiplier": 4, **params}, items).eval()


def test_ligr_sasrec_stays_causal():
    model = _sasrec(heads=2)
    seqs = torch.tensor([[0, 0, 3, 5, 7, 9, 11, 13]])
    changed = seqs.clone()
    changed[0, 5:] = torch.tensor([2, 4, 6])
    with torch.no_grad():
        before, after = model.encode(seqs), model.encode(changed)
    assert torch.allclose(before[0, :5], after[0, :5], atol=1e-6)
    assert not torch.allclose(before[0, 5:], after[0, 5:])


def test_ligr_gates_scale_the_residual_branches():
    torch.manual_seed(0)
    block = LiGRBlock(hidden=8, heads=2, dropout=0.0, ffn_multiplier=4).eval()
    x = torch.randn(2, 5, 8)
    mask = attention_mask(torch.ones(2, 5, dtype=torch.long), causal=True)
    with torch.no_grad():
        for gate in (block.gate_attn, block.gate_ffn):
            gate.weight.zero_()
            gate.bias.fill_(-100.0)  # sigmoid -> 0: both branches shut
        assert torch.allclose(block(x, mask), x, atol=1e-6)
        block.gate_attn.bias.fill_(100.0)  # attention branch fully open, feed-forward shut
        expected = x + block.attend(block.norm_attn(x), mask)
        assert torch.allclose(block(x, mask), expected, atol=1e-6)
        block.gate_attn.bias.zero_()  # sigmoid(0) = 1/2
        expected = x + 0.5 * block.attend(block.norm_attn(x), mask)
        assert torch.allclose(block(x, mask), expected, atol=1e-6)


def test_ligr_feed_forward_is_a_wide_swiglu_without_bias():
    block = LiGRBlock(hidden=8, heads=1, dropout=0.0, ffn_multiplier=4)
    assert block.ffn.gate.weight.shape == (32, 8) and block.ffn.down.weight.shape == (8, 32)
    assert block.ffn.gate.bias is None and block.ffn.up.bias is None and block.ffn.down.bias is None
    # The pre-LN block keeps its hidden -> hidden feed-forward unless asked for a wider one.
    assert TransformerBlock(8, 1, 0.0).ffn[0].weight.shape == (8, 8)
    assert TransformerBlock(8, 1, 0.0, ffn_multiplier=2).ffn[0].weight.shape == (16, 8)


def test_every_shipped_preset_is_a_valid_config_and_esasrec_is_the_recipe():
    assert {"esasrec", "esasrec-amazon"} <= set(preset_names())
    for name in preset_names():
        build_config({"data": {"dataset": "x"}}, None, [], preset=name)
    config = build_config({}, None, ["model.hidden=32", "train.sampled_softmax.replacement=false"], preset="esasrec")
    assert config.model["block"] == "ligr" and config.model["ffn_multiplier"] == 4 and config.model["hidden"] == 32
    assert config.model["max_len"] == 200 and config.model["dropout"] == 0.1
    assert config.train.loss == "sampled_softmax" and config.train.n_negatives == 256
    assert config.train.sampled_softmax.replacement is False and config.train.sampled_softmax.logq_correction is True


def test_a_config_file_changes_only_the_preset_keys_it_names(tmp_path):
    path = tmp_path / "mine.toml"
    path.write_text("[model]\nlayers = 3\n[train.sampled_softmax]\nnegatives = \"popularity\"\n")
    config = build_config({}, path, [], preset="esasrec")
    assert config.model["layers"] == 3 and config.model["block"] == "ligr"
    assert config.train.sampled_softmax.negatives == "popularity" and config.train.sampled_softmax.logq_correction


def test_an_unknown_preset_lists_the_valid_ones():
    with pytest.raises(UnknownNameError, match="valid presets: .*esasrec"):
        build_config({}, None, [], preset="esasrec2")


def test_cli_trains_with_a_preset(tmp_path):
    write_cyclic(tmp_path / "data")
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(tmp_path / "data"),
                                      "--preset", "esasrec", "--set", "model.max_len=10", "--set", "model.hidden=16",
                                      "--set", "train.n_negatives=8", "--set", "train.epochs=2",
                                      "--set", "train.progress=false", "--out", str(out)])
    assert result.exit_code == 0, result.output
    saved = json.loads((out / "config.json").read_text())
    assert saved["model"]["block"] == "ligr" and saved["train"]["loss"] == "sampled_softmax"
    bad = CliRunner().invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(tmp_path / "data"),
                                   "--preset", "nope", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "valid presets" in bad.output
