"""End to end through the CLI: train a GER run (encoder scorer) on a slice of ml-100k, then explain."""

import json

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


def invoke(*args):
    result = runner.invoke(app, [str(a) for a in args])
    return result.exit_code, result.output


@pytest.mark.slow
def test_train_ger_then_explain_json_plot_and_check(tmp_path, data_dir):
    run = tmp_path / "run"
    tiny = ["data.prepare.min_item_interactions=200", "data.prepare.min_user_interactions=5",
            "model.hidden=16", "model.max_len=20", "model.layers=1", "train.epochs=2", "train.threads=1",
            "train.progress=false", "train.batch_size=256", "embedding.scorer.kind=encoder", "embedding.base.epochs=1",
            f"embedding.cache_dir={tmp_path / 'cache'}"]
    args = ["train", "--dataset", "ml-100k", "--data-dir", data_dir, "--model", "sasrec", "--embedding", "ger",
            "--out", run]
    for item in tiny:
        args += ["--set", item]
    code, out = invoke(*args)
    assert code == 0, out
    assert (run / "metrics.json").is_file() and (run / "ger" / "state.npz").is_file()
    meta = json.loads((run / "ger" / "meta.json").read_text())
    assert meta["attributes"]["domain"] == "movies" and meta["m"] == 8 and meta["dim"] == 16
    assert meta["scoring"]["scorer"] == "encoder" and meta["items"]["without_score"] == meta["items"]["without_text"]
    assert meta["base"]["pca_dims"] == 8 and "ger/base/ml-100k-sasrec-" in meta["base"]["run"]

    code, out = invoke("explain", "--run", run, "--user", "1", "--k", "5", "--json", "--check",
                       "--plot", tmp_path / "user1.png")
    assert code == 0, out
    payload = json.loads(out)
    assert len(payload["items"]) == 5 and len(payload["attributes"]) == 8
    for item in payload["items"]:
        assert item["title"] and set(item["contributions"]) == set(payload["attributes"])
        total = sum(item["contributions"].values()) + item["rest"]
        assert total == pytest.approx(item["score"], abs=1e-5)
    assert payload["check"]["ok"] and (tmp_path / "user1.png").stat().st_size > 10_000
    assert np.all(np.diff([i["score"] for i in payload["items"]]) <= 1e-9)

    code, out = invoke("explain", "--run", run, "--user", "1", "--k", "3", "--holdout")
    assert code == 0 and "guided share" in out and "held-out item" in out
    code, out = invoke("explain", "--run", run, "--user", "no-such-user")
    assert code == 2 and "unknown user id" in out
