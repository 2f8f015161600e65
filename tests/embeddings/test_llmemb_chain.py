"""The LLMEmb chain on tiny synthetic data with a stub encoder: caching, provenance, backbones, reproducibility.

The real collaborative SASRec is trained (tiny, 1 epoch); the text encoder and SCFT are stubs that
count their calls, so "a second run makes zero encoder/SCFT calls" is checked exactly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from lucidrec.config import ConfigError
from lucidrec.data.pipeline import load_split
from lucidrec.methods import prepare
from lucidrec.methods import train as train_run
from lucidrec.methods.llmemb import collaborative as collaborative_module
from lucidrec.methods.llmemb import table as table_module
from lucidrec.methods.llmemb.scft import SCFTResult
from lucidrec.train.run import build_config, build_model, load_run
from tests.resume import assert_resume_equals_uninterrupted
from tests.synthetic import write_cyclic


class Calls:
    def __init__(self):
        self.scft = self.load = self.encode = self.cf = 0
        self.pairs = None


@pytest.fixture
def calls(monkeypatch, tmp_path):
    counted = Calls()
    monkeypatch.setenv("LUCIDREC_CACHE_DIR", str(tmp_path / "cache"))  # this test's own index of finished id runs

    def fake_scft(config, prompts, folder, *, location, key, progress=True, stop_after_steps=None, pairs=None):
        counted.scft += 1
        counted.pairs = pairs
        (folder / "model").mkdir(parents=True, exist_ok=True)
        return SCFTResult(folder / "model", 3, 1.5, 0.25, config.tuning.effective_temperature())

    def fake_load(location, folder=None):
        counted.load += 1
        return ("tuned" if folder is not None else "base"), None

    def fake_encode(model, tokenizer, texts, *, max_length, batch_size=64, progress=False, desc=""):
        counted.encode += 1
        rng = np.random.default_rng(abs(hash((model, len(texts)))) % 2**32)
        return rng.normal(size=(len(texts), 12)).astype(np.float32)

    real_train_run = collaborative_module.train_run

    def counting_train_run(*args, **kwargs):
        counted.cf += 1
        return real_train_run(*args, **kwargs)

    monkeypatch.setattr(table_module, "run_scft", fake_scft)
    monkeypatch.setattr(table_module, "load_encoder", fake_load)
    monkeypatch.setattr(table_module, "encode_texts", fake_encode)
    monkeypatch.setattr(collaborative_module, "train_run", counting_train_run)
    return counted


@pytest.fixture
def cyclic_dir(tmp_path):
    write_cyclic(tmp_path / "data", n_users=40, n_items=15, length=8)
    return tmp_path / "data"


def _config(data_dir, artifacts, model="sasrec", **embedding):
    return build_config({
        "data": {"dataset": "cyclic", "data_dir": str(data_dir)},
        "model": {"name": model, "hidden": 8, "max_len": 6, **({"heads": 1} if model != "gru4rec" else {})},
        "embedding": {"name": "llmemb", "artifacts_dir": str(artifacts), **embedding,
                      "reference": {"epochs": 1, **embedding.get("reference", {})}},
        "train": {"epochs": 1, "batch_size": 16, "progress": False, "loss": "ce"},
    })


def _build(config, run_dir):
    """The recipe's stages into ``run_dir``, then the model the run trains (what ``lucidrec train`` builds)."""
    prepare(config, run_dir)
    data, split = load_split(config.data)
    return build_model(config, data, split, run_dir)


def test_second_build_reuses_everything(cyclic_dir, tmp_path, calls):
    config = _config(cyclic_dir, tmp_path / "art")
    data, split = load_split(config.data)
    first = _build(config, tmp_path / "run1")
    assert (calls.scft, calls.load, calls.encode, calls.cf) == (1, 1, 1, 1)
    assert first.items.collaborative.shape == (16, 8) and first.items.frozen.shape == (16, 12)

    second = _build(config, tmp_path / "run2")
    assert (calls.scft, calls.load, calls.encode, calls.cf) == (1, 1, 1, 1)  # nothing re-trained or re-encoded
    assert torch.equal(first.items.frozen, second.items.frozen)
    assert torch.equal(first.items.collaborative, second.items.collaborative)

    # provenance: encoder, SCFT config, data hash, costs
    table_info = second.items.info["table"]
    assert table_info["encoder"].startswith("all-MiniLM-L6-v2@") and table_info["data_hash"] == data.data_hash
    assert table_info["scft"]["dropout_ratio"] == 0.4 and table_info["scft_steps"] == 3
    assert table_info["scft_seconds"] == 1.5 and table_info["encode_seconds"] >= 0
    assert second.items.info["collaborative"]["auto_trained"] is True

    # a PCA or adapter change reuses SCFT and the encoded table; an SCFT change re-tunes and re-encodes
    _build(_config(cyclic_dir, tmp_path / "art", table={"pca_dim": 4}, adapter={"hidden": 3}), tmp_path / "run3")
    assert (calls.scft, calls.encode, calls.cf) == (1, 1, 1)
    _build(_config(cyclic_dir, tmp_path / "art", tuning={"lr": 1e-4}), tmp_path / "run4")
    assert (calls.scft, calls.encode, calls.cf) == (2, 2, 1)
    # the frozen variant needs neither SCFT nor E_cf
    frozen = _build(_config(cyclic_dir, tmp_path / "art", variant="frozen"), tmp_path / "run5")
    assert (calls.scft, calls.encode, calls.cf) == (2, 3, 1) and frozen.items.collaborative is None
    assert frozen.items.auxiliary_loss(torch.tensor([1, 2, 3])) is None


def test_cached_and_fresh_chains_give_identical_models(cyclic_dir, tmp_path, calls):
    config = _config(cyclic_dir, tmp_path / "art")
    prepare(config, tmp_path / "run1")  # trains the CF SASRec
    data, split = load_split(config.data)
    torch.manual_seed(3)
    fresh = build_model(config, data, split, tmp_path / "run1")
    prepare(config, tmp_path / "run2")  # every stage cached
    torch.manual_seed(3)
    cached = build_model(config, data, split, tmp_path / "run2")
    assert calls.cf == 1
    a, b = fresh.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec"])
def test_every_backbone_trains_with_llmemb_and_reloads(cyclic_dir, tmp_path, calls, model):
    config = _config(cyclic_dir, tmp_path / "art", model=model)
    out = tmp_path / model
    metrics = train_run(config, out)
    assert "test/full/ndcg@10" in metrics and "test/full/tail/ndcg@10" in metrics
    kept = json.loads((out / "llmemb" / "provenance.json").read_text())
    assert kept["variant"] == "full" and (out / "llmemb" / "cf_table.npy").is_file()
    assert np.load(out / "item_table.npy").shape == (16, 8)
    encodes = calls.encode
    reloaded, *_ = load_run(out)  # from the copy in the run folder, not the cache
    assert calls.encode == encodes
    extra = 1 if model == "bert4rec" else 0
    assert reloaded.items.frozen.shape == (16 + extra, 12)


def test_given_collaborative_run_is_used_and_checked(cyclic_dir, tmp_path, calls):
    cf = tmp_path / "cf"
    train_run(build_config({"data": {"dataset": "cyclic", "data_dir": str(cyclic_dir)},
                            "model": {"name": "sasrec", "hidden": 8, "max_len": 6, "heads": 1},
                            "train": {"epochs": 1, "progress": False}}), cf)
    config = _config(cyclic_dir, tmp_path / "art", reference={"run": str(cf)})
    calls.cf = 0
    model = _build(config, tmp_path / "run")
    assert calls.cf == 0
    assert np.array_equal(model.items.collaborative.numpy(), np.load(cf / "item_table.npy"))
    wrong_width = _config(cyclic_dir, tmp_path / "art", reference={"run": str(cf)})
    wrong_width.model["hidden"] = 16
    with pytest.raises(ConfigError, match="E_cf"):
        _build(wrong_width, tmp_path / "run_wrong")


def test_rat_resume_equals_uninterrupted(cyclic_dir, tmp_path, calls):
    # a small align_max_items makes the alignment draw a random subset every step: it must line up too
    config = _config(cyclic_dir, tmp_path / "art", alignment={"max_items": 4, "weight": 0.5})
    config.train.epochs = 3
    assert_resume_equals_uninterrupted(config, tmp_path, stop_after_epochs=1)


def test_llmemb_trains_in_bfloat16(cyclic_dir, tmp_path, calls):
    # The adapter and the alignment loss run beside an autocast backbone; the table stays float32.
    values = _config(cyclic_dir, tmp_path / "art").model_dump(mode="json")
    values["train"]["precision"] = "bfloat16"
    metrics = train_run(build_config(values), tmp_path / "run")
    assert np.isfinite(metrics["test/full/ndcg@10"])
    assert np.load(tmp_path / "run" / "item_table.npy").dtype == np.float32


def test_status_names_every_stage_and_skips_what_the_variant_does_not_use(cyclic_dir, tmp_path, calls):
    from lucidrec.methods import StageState, status

    config = _config(cyclic_dir, tmp_path / "art")
    train_run(config, tmp_path / "full")
    stages = status(tmp_path / "full")
    assert [(s.name, s.state) for s in stages] == [("scft", StageState.DONE), ("item_table", StageState.DONE),
                                                   ("collaborative_run", StageState.DONE), ("rat_run", StageState.DONE)]
    assert stages[2].where.startswith(str(tmp_path / "art" / "cf"))
    frozen = _config(cyclic_dir, tmp_path / "art", variant="frozen")
    prepare(frozen, tmp_path / "frozen")
    assert [s.state for s in status(tmp_path / "frozen")] == [StageState.SKIPPED, StageState.DONE, StageState.SKIPPED,
                                                              StageState.MISSING]


def test_the_reference_run_is_the_runs_own_id_baseline_and_a_recorded_one_is_reused(cyclic_dir, tmp_path, calls,
                                                                                     monkeypatch):
    from lucidrec.methods.llmemb.collaborative import cf_run_config

    values = _config(cyclic_dir, tmp_path / "art").model_dump(mode="json")
    values["model"].update(dropout=0.5, layers=1)
    values["train"].update(seed=7)
    values["embedding"]["reference"].pop("epochs")
    config = build_config(values)
    reference = cf_run_config(config, 8, config_llmemb(config))
    assert reference.model == {**config.model, "name": "sasrec"} and reference.train.seed == 7
    assert reference.train.epochs == config.train.epochs and reference.data == config.data
    gru = _config(cyclic_dir, tmp_path / "art", model="gru4rec").model_dump(mode="json")
    gru["model"].update(dropout=0.4)
    gru_reference = cf_run_config(build_config(gru), 8, config_llmemb(build_config(gru)))
    assert gru_reference.model["name"] == "sasrec" and gru_reference.model["dropout"] == 0.4
    assert gru_reference.model["max_len"] == 6 and gru_reference.model["hidden"] == 8

    # The id baseline of these very settings, trained first through lucidrec train, is E_cf: nothing retrained.
    baseline = build_config({**values, "embedding": {"name": "id"}})
    train_run(baseline, tmp_path / "id")
    calls.cf = 0
    train_run(config, tmp_path / "llmemb")
    assert calls.cf == 0
    kept = json.loads((tmp_path / "llmemb" / "llmemb" / "provenance.json").read_text())["collaborative"]
    assert kept["run"] == str((tmp_path / "id").resolve()) and kept["reused_id_run"] and not kept["auto_trained"]
    assert kept["config"]["seed"] == 7 and kept["config"]["model"]["dropout"] == 0.5
    assert np.array_equal(np.load(tmp_path / "llmemb" / "llmemb" / "cf_table.npy"), np.load(tmp_path / "id" / "item_table.npy"))
    # Another seed has no recorded id run: its own is trained (and cached) with that seed.
    values["train"].update(seed=8)
    train_run(build_config(values), tmp_path / "llmemb8")
    other = json.loads((tmp_path / "llmemb8" / "llmemb" / "provenance.json").read_text())["collaborative"]
    assert calls.cf == 1 and other["auto_trained"] and other["config"]["seed"] == 8


def config_llmemb(config):
    from lucidrec.embeddings.llmemb.config import LLMEmbConfig

    return LLMEmbConfig(**{k: v for k, v in config.embedding.items() if k != "name"})


def test_a_resumed_run_goes_on_with_the_tables_it_started_with(cyclic_dir, tmp_path, calls):
    config = _config(cyclic_dir, tmp_path / "art")
    config.train.epochs = 2
    run = tmp_path / "run"
    assert train_run(config, run, stop_after_epochs=1)["status"] == "interrupted"
    kept = run / "llmemb" / "provenance.json"
    kept.write_text(json.dumps({**json.loads(kept.read_text()), "chain_key": "made-by-another-version"}))
    before = (run / "llmemb" / "cf_table.npy").read_bytes()
    scft, cf = calls.scft, calls.cf
    assert train_run(config, run, resume=True)["status"] == "done"
    assert (calls.scft, calls.cf) == (scft, cf) and (run / "llmemb" / "cf_table.npy").read_bytes() == before
    assert json.loads(kept.read_text())["chain_key"] == "made-by-another-version"


def test_interaction_tuning_uses_training_pairs_only_and_is_cached_by_them(cyclic_dir, tmp_path, calls):
    config = _config(cyclic_dir, tmp_path / "art", variant="no_align", tuning={"kind": "interactions"})
    data, split = load_split(config.data)
    _build(config, tmp_path / "run1")
    assert calls.scft == 1 and calls.pairs is not None
    train_pairs = {(int(a), int(b)) for row in range(len(split.train)) for a, b in zip(split.train[row][:-1], split.train[row][1:])}
    assert {tuple(map(int, p)) for p in calls.pairs} == train_pairs  # exactly the training part's consecutive pairs
    _build(config, tmp_path / "run2")
    assert calls.scft == 1  # reused
    _build(_config(cyclic_dir, tmp_path / "art", variant="no_align"), tmp_path / "run3")
    assert calls.scft == 2 and calls.pairs is None  # SCFT is another artifact

    held = build_config({**config.model_dump(mode="json"),
                         "data": {**config.data.model_dump(mode="json"), "split": {"new_items": 0.2}}})
    _, held_split = load_split(held.data)
    _build(held, tmp_path / "run4")
    assert calls.scft == 3  # other training pairs: tuned again
    assert not np.isin(calls.pairs, held_split.new_items).any()
    with pytest.raises(ConfigError, match="variant 'frozen' does not"):
        _config(cyclic_dir, tmp_path / "art", variant="frozen", tuning={"kind": "interactions"})


def test_the_hybrid_id_part_composes_with_the_llmemb_table(cyclic_dir, tmp_path, calls):
    config = _config(cyclic_dir, tmp_path / "art", id_part={"enabled": True, "init": "zero", "dropout": 0.1, "weight_decay": 0.5},
                     table={"scaling": "zca_whitened", "whitening_shrinkage": 0.1})
    held = build_config({**config.model_dump(mode="json"),
                         "data": {**config.data.model_dump(mode="json"), "split": {"new_items": 0.2}}})
    data, split = load_split(held.data)
    model = _build(held, tmp_path / "run")
    items = model.items.eval()
    assert torch.equal(items.table(), items.adapter(items.frozen)[: data.n_items + 1])  # zero init: the text table
    with torch.no_grad():
        items.residual.weight.weight.normal_()
    new = torch.as_tensor(split.new_items)
    assert torch.equal(items.table()[new], items.adapter(items.frozen)[new])  # held-out items: text only
    targets = torch.tensor([1, 2, 3, 4])
    penalty = items.residual.penalty()
    assert penalty is not None and penalty > 0
    assert items.auxiliary_loss(targets) > penalty  # the weight decay and the alignment loss, both
