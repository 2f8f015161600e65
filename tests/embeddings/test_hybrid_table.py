"""Whitening of text tables, the text + id hybrid table and the fallback rows of items without text."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lucidrec.config import ConfigError
from lucidrec.data.pipeline import load_split
from lucidrec.embeddings.frozen_table import FrozenTableEmbedding, scale_table
from lucidrec.embeddings.id_part import IdPart
from lucidrec.embeddings.whitening import whiten_rows, whitening_transform
from lucidrec.train.run import build_config, build_model, load_run, train_run
from tests.synthetic import write_cyclic


def _anisotropic(rng, n=200, dim=6):
    base = rng.normal(size=(n, dim)) @ rng.normal(size=(dim, dim)) + 3.0  # correlated, far from centred
    return torch.as_tensor(base, dtype=torch.float64)


@pytest.mark.parametrize("method", ["pca", "zca"])
def test_whitening_gives_identity_covariance_on_the_fit_rows(method):
    rows = _anisotropic(np.random.default_rng(0))
    matrix = torch.cat([torch.zeros(1, rows.shape[1], dtype=rows.dtype), rows])
    fit = torch.ones(len(matrix), dtype=torch.bool)
    fit[0] = False
    out = whiten_rows(matrix, fit, method)
    white = out[1:]
    assert torch.allclose(white.mean(dim=0), torch.zeros(6, dtype=white.dtype), atol=1e-9)
    assert torch.allclose(white.T @ white / len(white), torch.eye(6, dtype=white.dtype), atol=1e-8)
    assert torch.equal(out[0], torch.zeros(6, dtype=out.dtype))  # padding stays zero
    mean, transform = whitening_transform(rows, method)
    if method == "zca":  # ZCA's map is symmetric: it whitens without rotating the axes
        assert torch.allclose(transform, transform.T, atol=1e-10)
    else:  # PCA's first output axis carries the largest variance of the input
        assert not torch.allclose(transform, transform.T, atol=1e-3)


def test_whitening_a_catalog_smaller_than_its_width_needs_shrinkage():
    rows = _anisotropic(np.random.default_rng(1), n=5, dim=8)
    with pytest.raises(ConfigError, match="5 item rows for 8 dimensions.*whitening_shrinkage"):
        whitening_transform(rows, "pca")
    mean, transform = whitening_transform(rows, "zca", shrinkage=0.2)
    white = (rows - mean) @ transform
    assert torch.isfinite(white).all()
    # Shrinkage keeps every direction finite: the covariance is no longer the identity; its eigenvalues
    # s / ((1 - λ)·s + λ·t) stay below 1 / (1 - λ), and the n - 1 = 4 directions the rows span are not zero.
    values = torch.linalg.eigvalsh(white.T @ white / len(white))
    assert values.max() <= 1 / 0.8 + 1e-9 and (values > 0.1).sum() == 4


def test_the_whitened_scalings_leave_rows_without_values_at_zero():
    rng = np.random.default_rng(2)
    matrix = torch.cat([torch.zeros(1, 4), torch.as_tensor(rng.normal(size=(30, 4)), dtype=torch.float32), torch.zeros(1, 4)])
    out = scale_table(matrix, "pca_whitened")
    assert torch.equal(out[0], torch.zeros(4)) and torch.equal(out[-1], torch.zeros(4))
    assert torch.allclose(out[1:-1].T @ out[1:-1] / 30, torch.eye(4), atol=1e-4)


def _module(trained=None, **options):
    rng = np.random.default_rng(3)
    matrix = np.vstack([np.zeros((1, 6)), rng.normal(size=(10, 6))]).astype(np.float32)
    return FrozenTableEmbedding(matrix, 4, residual_id=True, trained=trained, **options)


def test_the_id_part_of_untrained_items_is_zero_whatever_its_init():
    trained = torch.ones(11, dtype=torch.bool)
    trained[[3, 7]] = False
    for init in ("random", "text"):
        module = _module(trained, id_init=init).eval()
        text_only = module.adapter(module.frozen)
        table = module.table()
        assert torch.equal(table[[3, 7]], text_only[[3, 7]])
        assert not torch.allclose(table[[1, 2]], text_only[[1, 2]])  # the trained ones have an id part
        # ... and no gradient reaches them either
        table.sum().backward()
        grad = module.residual.weight.weight.grad
        assert torch.equal(grad[[3, 7]], torch.zeros(2, 4)) and grad[1].abs().sum() > 0
    zero = _module(trained, id_init="zero").eval()
    assert torch.equal(zero.table(), zero.adapter(zero.frozen))  # the hybrid starts as the text table


def test_text_init_copies_the_adapters_initial_output():
    module = _module(id_init="text").eval()
    text_only = module.adapter(module.frozen).detach()
    assert torch.allclose(module.residual.weight.weight[1:], text_only[1:])
    assert torch.allclose(module.table()[1:], 2 * text_only[1:])


def test_id_dropout_acts_in_training_only_and_drops_whole_item_vectors():
    torch.manual_seed(0)
    module = _module(id_init="random", id_dropout=0.5)
    ids = torch.arange(1, 11).repeat(20)
    text_part = module.adapter(module.frozen[ids]).detach()
    module.eval()
    eval_out = module(ids).detach()
    assert torch.equal(eval_out, module(ids).detach())  # deterministic
    assert not torch.isclose(eval_out, text_part).all(dim=1).any()  # every id part present
    module.train()
    module.adapter[1].p = 0.0  # the adapter's own dropout is 0 already; only the id part may change
    out = module(ids).detach()
    dropped = torch.isclose(out, text_part, atol=1e-7).all(dim=1)
    assert 0.3 < dropped.float().mean() < 0.7
    # Within one call an item is dropped or kept as a whole, and kept ones are scaled by 1 / (1 - p).
    for item in range(1, 11):
        rows = ids == item
        assert dropped[rows].all() or not dropped[rows].any()
        if not dropped[rows].any():
            assert torch.allclose(out[rows] - text_part[rows], 2 * (eval_out[rows] - text_part[rows]), atol=1e-6)


def test_id_weight_decay_is_an_l2_penalty_over_the_trained_id_vectors():
    trained = torch.ones(11, dtype=torch.bool)
    trained[5] = False
    module = _module(trained, id_weight_decay=0.1)
    weight = module.residual.weight.weight.detach()
    expected = 0.05 * (weight[1:].pow(2).sum() - weight[5].pow(2).sum())
    assert module.auxiliary_loss(torch.tensor([1])).item() == pytest.approx(expected.item(), rel=1e-5)
    assert _module().auxiliary_loss(torch.tensor([1])) is None
    assert IdPart(4, 2).penalty() is None


def test_id_options_without_the_id_part_are_an_error():
    with pytest.raises(ConfigError, match="id_dropout only apply with residual_id=true"):
        build_config({"embedding": {"name": "frozen", "path": "x.npy", "id_dropout": 0.2}})
    with pytest.raises(ConfigError, match="'id_part': init only apply with enabled=true"):
        build_config({"embedding": {"name": "llmemb", "id_part": {"init": "zero"}}})
    hybrid = build_config({"embedding": {"name": "hybrid", "path": "x.npy"}})
    assert hybrid.embedding["residual_id"] is True and hybrid.embedding["id_init"] == "zero"


@pytest.fixture
def text_table(tmp_path):
    """The cyclic dataset and a title matrix with a sidecar: item i5 absent, item i6 a fallback prompt."""
    write_cyclic(tmp_path / "data", n_users=40, n_items=15, length=8)
    config = build_config({"data": {"dataset": "cyclic", "data_dir": str(tmp_path / "data")}})
    data, _ = load_split(config.data)
    rng = np.random.default_rng(4)
    ids = [str(i) for i in data.item_ids]
    stored = [i for i in ids if i != "i5"]
    vectors = rng.normal(size=(len(stored), 12)).astype(np.float32)
    vectors[0] = 0
    np.save(tmp_path / "titles.npy", vectors)
    sidecar = {"encoder": "stub", "text_form": "title", "item_ids": stored, "dim": 12, "n_fallback": 1,
               "fallback_ids": ["i6"]}
    (tmp_path / "titles.json").write_text(json.dumps(sidecar))
    return tmp_path / "data", tmp_path / "titles.npy", data


def _run_config(data_dir, path, model="sasrec", split=None, **embedding):
    return build_config({
        "data": {"dataset": "cyclic", "data_dir": str(data_dir), "split": split or {}},
        "model": {"name": model, "hidden": 8, "max_len": 6},
        "embedding": {"name": "hybrid", "path": str(path), **embedding},
        "train": {"epochs": 1, "batch_size": 16, "progress": False},
    })


def test_items_without_text_get_the_mean_row_counted_and_reported(text_table, tmp_path, capsys):
    data_dir, path, data = text_table
    config = _run_config(data_dir, path)
    _, split = load_split(config.data)
    model = build_model(config, data, split)
    frozen = model.items.frozen
    missing = [int(np.flatnonzero(data.item_ids == i)[0]) for i in ("i5", "i6")]
    assert torch.equal(frozen[missing[0]], frozen[missing[1]])  # both the fallback row ...
    with_text = [i for i in range(1, 16) if i not in missing]
    assert torch.allclose(frozen[missing[0]], frozen[with_text].mean(dim=0), atol=1e-6)  # ... the mean text row
    assert model.items.info["item_text"]["items_without_text"] == 2
    assert "2 of 15 items have no text" in capsys.readouterr().err
    train_run(config, tmp_path / "run")
    assert json.loads((tmp_path / "run" / "embedding.json").read_text())["item_text"]["items_without_text"] == 2


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec", "caser"])
def test_the_hybrid_trains_under_every_backbone_and_new_items_keep_a_zero_id_part(text_table, tmp_path, model):
    data_dir, path, _ = text_table
    config = _run_config(data_dir, path, model=model, split={"new_items": 0.2}, id_init="random", id_dropout=0.3,
                         id_weight_decay=0.01, scaling="zca_whitened", whitening_shrinkage=0.1)
    result = train_run(config, tmp_path / "run")
    assert np.isfinite(result["test/full/ndcg@10"]) and "test/full/new/n_users" in result
    trained, _, split, _ = load_run(tmp_path / "run")
    items = trained.items.eval()
    with torch.no_grad():
        text_only = items.adapter(items.frozen)[: split.n_items + 1]
        table = items.table()
    new = torch.as_tensor(split.new_items)
    assert torch.equal(table[new], text_only[new])
    seen = torch.as_tensor(np.flatnonzero(split.item_counts() > 0))
    assert not torch.allclose(table[seen], text_only[seen])


def test_the_hybrid_and_the_new_item_split_are_configuration_on_lucidrec_train(text_table, tmp_path):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    data_dir, path, _ = text_table
    result = CliRunner().invoke(app, [
        "train", "--dataset", "cyclic", "--data-dir", str(data_dir), "--model", "gru4rec", "--embedding", "hybrid",
        "--set", f"embedding.path={path}", "--set", "embedding.scaling=pca_whitened", "--set", "embedding.id_dropout=0.2",
        "--set", "data.split.new_items=0.2", "--set", "model.hidden=8", "--set", "train.epochs=1",
        "--set", "train.progress=false", "--out", str(tmp_path / "run")])
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "run" / "metrics.json").read_text())
    assert metrics["test/full/new/n_users"] > 0 and "test/full/cold/ndcg@10" in metrics
    split_info = json.loads((tmp_path / "run" / "data.json").read_text())["split"]
    assert split_info["new_items"] == 3 and split_info["users_without_training_history"] == 0
