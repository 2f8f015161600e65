"""End-to-end on a real data slice: every backbone trains and evaluates from the CLI on amazon-scientific."""

import json

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


@pytest.mark.e2e
@pytest.mark.parametrize("model", ["sasrec", "gru4rec", "bert4rec", "caser"])
def test_backbone_trains_on_amazon_scientific(data_dir, tmp_path, model):
    out = tmp_path / model
    result = runner.invoke(app, [
        "train", "--dataset", "amazon-scientific", "--data-dir", str(data_dir), "--model", model, "--out", str(out),
        "--set", "train.epochs=2", "--set", "model.hidden=32", "--set", "model.max_len=20",
        "--set", "train.progress=false", "--set", "train.loss=ce",
    ])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["test/full/n_users"] == 2928
    assert metrics["test/full/tail/n_users"] + metrics["test/full/head/n_users"] == 2928
    log = [json.loads(line) for line in (out / "log.jsonl").read_text().splitlines()]
    assert len(log) == 2 and log[1]["loss"] < log[0]["loss"]
