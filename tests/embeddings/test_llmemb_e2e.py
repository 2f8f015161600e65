"""``lucidrec train --embedding llmemb`` end to end on amazon-scientific (tiny settings, real MiniLM)."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.methods.llmemb import table as table_module

pytestmark = [pytest.mark.slow, pytest.mark.e2e]


def _train(data_dir, out, artifacts, model):
    settings = ["model.hidden=32", "model.max_len=20", "train.epochs=1", "train.threads=1", "train.loss=ce",
                "train.progress=false", "embedding.tuning.max_steps=3", "embedding.tuning.batch_size=16",
                "embedding.prompts.max_seq_length=16", "embedding.table.encode_batch_size=128", "embedding.reference.epochs=1",
                f"embedding.artifacts_dir={artifacts}"]
    args = ["train", "--dataset", "amazon-scientific", "--data-dir", str(data_dir), "--model", model,
            "--embedding", "llmemb", "--out", str(out)]
    for item in settings:
        args += ["--set", item]
    return CliRunner().invoke(app, args)


def test_cli_runs_the_whole_chain_then_reuses_it(data_dir, tmp_path, monkeypatch):
    if not (data_dir / "amazon-scientific").is_dir():
        pytest.skip("amazon-scientific not in the data directory")
    result = _train(data_dir, tmp_path / "sasrec", tmp_path / "art", "sasrec")
    assert result.exit_code == 0, result.output
    metrics = json.loads((tmp_path / "sasrec" / "metrics.json").read_text())
    for key in ("test/full/ndcg@10", "test/full/tail/ndcg@10", "test/full/head/ndcg@10", "test/full/recall@10"):
        assert 0 <= metrics[key] <= 1, key
    assert metrics["embedding"] == "llmemb" and metrics["config"]["embedding"]["tuning"]["max_steps"] == 3
    kept = json.loads((tmp_path / "sasrec" / "llmemb" / "provenance.json").read_text())
    assert kept["table"]["scft_steps"] == 3 and kept["table"]["n_items"] == 1585
    assert kept["collaborative"]["auto_trained"] and kept["collaborative"]["training_seconds"] > 0
    assert len(list((tmp_path / "art" / "scft").iterdir())) == 2  # the artifact folder + its lock file

    def forbidden(*args, **kwargs):
        raise AssertionError("the second run must reuse SCFT and the encoded table")

    monkeypatch.setattr(table_module, "run_scft", forbidden)
    monkeypatch.setattr(table_module, "encode_texts", forbidden)
    again = _train(data_dir, tmp_path / "gru4rec", tmp_path / "art", "gru4rec")
    assert again.exit_code == 0, again.output
    assert "test/full/tail/ndcg@10" in json.loads((tmp_path / "gru4rec" / "metrics.json").read_text())
    assert len(list((tmp_path / "art" / "cf").iterdir())) == 2  # the SASRec for E_cf was reused too
