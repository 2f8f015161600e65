"""bench/bench_ger.py builds the GER config each variant names (a benchmark row is only as true as its label)."""

from types import SimpleNamespace

import pytest

from lucidrec.embeddings.ger.config import GERConfig


@pytest.fixture(scope="module")
def bench_ger(import_bench_script):
    return import_bench_script("bench_ger")


@pytest.mark.parametrize("variant, scorer, mode, tuned, negatives", [
    ("llm", "llm", "refined", False, "uniform"),
    ("encoder", "encoder", "refined", False, "uniform"),
    ("reduced", "encoder", "reduced", False, "uniform"),
    ("llm_tuned", "llm", "refined", True, "uniform"),
    ("llm_tuned_top", "llm", "refined", True, "base_top"),
])
def test_each_variant_gets_its_scorer(bench_ger, tmp_path, variant, scorer, mode, tuned, negatives):
    args = SimpleNamespace(out=tmp_path, llm=None, llm_batch_size=16, tune_steps=None)
    embedding = bench_ger.ger_embedding(args, variant, tmp_path / "base")
    config = GERConfig.model_validate({k: v for k, v in embedding.items() if k != "name"})
    assert (config.scorer.kind, config.mode, config.tuning.enabled, config.tuning.negatives_from) == (scorer, mode, tuned, negatives)
    assert config.base.run == str(tmp_path / "base")


def test_every_listed_variant_builds(bench_ger, tmp_path):
    args = SimpleNamespace(out=tmp_path, llm=None, llm_batch_size=16, tune_steps=7)
    for variant in bench_ger.VARIANTS:
        if variant != bench_ger.BASE:
            embedding = bench_ger.ger_embedding(args, variant, tmp_path)
            GERConfig.model_validate({k: v for k, v in embedding.items() if k != "name"})
    assert bench_ger.ger_embedding(args, "llm_tuned", tmp_path)["tuning"]["steps"] == 7


def test_embedding_overrides_reach_the_refined_runs_only(bench_ger, tmp_path):
    # the id base folder is shared with bench_llmemb; an embedding.* key would also be rejected by the id config
    args = SimpleNamespace(out=tmp_path, llm=None, llm_batch_size=16, tune_steps=None, epochs=200, threads=1,
                           data_dir=None, progress=False, max_len=None, smoke=False,
                           overrides=["embedding.base.train_reduced=false", "train.patience=3"])
    refined = bench_ger.run_config(args, "amazon-beauty", "gru4rec", 3, "reduced",
                                   bench_ger.ger_embedding(args, "reduced", tmp_path / "base"))
    base = bench_ger.run_config(args, "amazon-beauty", "gru4rec", 3, bench_ger.BASE, {"name": "id"})
    ger = GERConfig.model_validate({k: v for k, v in refined.embedding.items() if k != "name"})
    assert (ger.base.train_reduced, ger.mode, refined.train.patience) == (False, "reduced", 3)
    assert (base.embedding["name"], "base" in base.embedding, base.train.patience) == ("id", False, 3)
