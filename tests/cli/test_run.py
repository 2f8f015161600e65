"""``lucidrec run`` on tiny data: epoch lines without progress-bar redraws when stdout is not a
terminal, the closing user's recommendations, and the explorer command for the run just trained."""

from __future__ import annotations

import json

import pytest
from typer.testing import CliRunner

import lucidrec.explain
import lucidrec.train.run
import lucidrec.train.presets as presets
from lucidrec.cli import app
from lucidrec.explain import Explanation
from tests.synthetic import write_cyclic

runner = CliRunner()
TINY = ["--set", "train.epochs=2", "--set", "model.max_len=12", "--set", "model.hidden=16", "--set", "train.threads=1"]


@pytest.fixture
def cyclic(tmp_path):
    write_cyclic(tmp_path / "data")
    return tmp_path


def run_quickstart(root, *extra):
    result = runner.invoke(app, ["run", "--dataset", "cyclic", "--data-dir", str(root / "data"),
                                 "--out", str(root / "runs"), *TINY, *extra])
    assert result.exit_code == 0, result.output
    return result.output


def test_run_prints_epoch_lines_not_bar_redraws_and_ends_with_recommendations_and_the_serve_command(cyclic):
    output = run_quickstart(cyclic)
    assert "epoch   0 loss" in output and "epoch   1 loss" in output
    assert "\r" not in output and "it/s" not in output  # no tqdm bar drawn into a non-terminal
    assert "settings:" not in output  # the synthetic dataset has no preset
    closing = output.split("run folder:")[1]
    assert "top 5 for user u0 (last seen: " in closing
    assert closing.count("(item i") == 5 and "Item number" in closing  # titles, from the catalog
    assert "--embedding ger" in closing
    run_dir = cyclic / "runs" / "cyclic" / "sasrec"
    assert closing.rstrip().endswith(f"lucidrec serve {run_dir}")


def test_an_explainable_run_closes_with_its_explainers_text(cyclic, monkeypatch):
    calls = []

    class RecordingExplainer:
        def explain(self, run, user, k=10, *, holdout=False, check=False, loaded=None):
            calls.append((run, user, k, loaded is not None))
            return Explanation(str(run), user, [], {}, "EXPLAINED TEXT")

    monkeypatch.setattr(lucidrec.explain, "explainer_for", lambda run: RecordingExplainer())
    output = run_quickstart(cyclic)
    assert "EXPLAINED TEXT" in output and "--embedding ger" not in output
    assert calls == [(cyclic / "runs" / "cyclic" / "sasrec", "u0", 5, True)]


def test_a_dataset_preset_sets_the_run_and_set_overrides_it(cyclic, monkeypatch):
    monkeypatch.setattr(presets, "preset_names", lambda: ["esasrec", "sasrec-cyclic"])
    tuned = {"model": {"name": "sasrec", "dropout": 0.4, "hidden": 8}, "train": {"lr": 0.005}}
    monkeypatch.setattr(lucidrec.train.run, "load_preset", lambda name: tuned if name == "sasrec-cyclic" else {})
    output = run_quickstart(cyclic, "--set", "train.lr=0.003")
    assert "settings: preset sasrec-cyclic" in output
    config = json.loads((cyclic / "runs" / "cyclic" / "sasrec" / "config.json").read_text())
    # The preset's dropout stays, --set (TINY's hidden, then lr) wins over it.
    assert config["model"]["dropout"] == 0.4 and config["model"]["hidden"] == 16 and config["train"]["lr"] == 0.003
