import json
import shutil

import numpy as np
import pytest
from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


@pytest.fixture(scope="module")
def baseline_runs(data_dir, tmp_path_factory):
    """The popularity and co-occurrence baselines on ml-100k, evaluated once for every test here."""
    out = tmp_path_factory.mktemp("baselines")
    for model in ("pop", "cooc"):
        result = runner.invoke(app, ["evaluate", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--model", model,
                                     "--out", str(out / model)])
        assert result.exit_code == 0, result.output
    return out / "pop", out / "cooc"


def test_compare_and_aggregate_baselines(baseline_runs):
    pop, cooc = baseline_runs
    result = runner.invoke(app, ["compare", str(pop), str(cooc), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)[str(cooc)]["ndcg@10"]
    assert stats["mean_b"] > stats["mean_a"] and stats["t_pvalue"] < 1e-6 and stats["n"] == 943
    result = runner.invoke(app, ["compare", str(pop), str(cooc), "--metric", "ndcg@11"])
    assert result.exit_code == 2 and "unknown --metric ndcg@11" in result.output and "ndcg@10" in result.output
    result = runner.invoke(app, ["aggregate", str(pop), str(cooc), "--json"])
    table = json.loads(result.output)
    assert table["test/full/ndcg@10"]["n"] == 2


def test_compare_on_one_group_tests_only_that_groups_users(baseline_runs, tmp_path):
    from lucidrec.eval.metrics import per_user_metrics
    from lucidrec.eval.stats import paired_test

    pop, cooc = baseline_runs
    # cooc as the reference: popularity scores ~0 on tail targets, which would leave the relative change undefined.
    result = runner.invoke(app, ["compare", str(cooc), str(pop), "--group", "tail", "--metric", "ndcg@10", "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)[str(pop)]["ndcg@10"]

    a, b = np.load(cooc / "ranks_test.npz"), np.load(pop / "ranks_test.npz")
    tail = a["group_tail"]
    assert tail.dtype == bool and 0 < tail.sum() < len(tail) and np.array_equal(tail, ~a["group_head"])
    expected = paired_test(per_user_metrics(a["rank_full"])["ndcg@10"][tail], per_user_metrics(b["rank_full"])["ndcg@10"][tail])
    assert stats == expected and stats["n"] == int(tail.sum())
    # The group's mean is the tail figure metrics.json reports.
    assert stats["mean_a"] > 0 and abs(stats["mean_a"] - json.loads((cooc / "metrics.json").read_text())["test/full/tail/ndcg@10"]) < 1e-12

    result = runner.invoke(app, ["compare", str(cooc), str(pop), "--group", "tails"])
    assert result.exit_code == 2 and "unknown --group tails" in result.output and "tail" in result.output

    # A run evaluated before the masks were stored (a copy, so the shared runs stay intact): the error says how to add them.
    legacy = shutil.copytree(cooc, tmp_path / "legacy")
    np.savez_compressed(legacy / "ranks_test.npz", users=a["users"], rank_full=a["rank_full"])
    result = runner.invoke(app, ["compare", str(legacy), str(pop), "--group", "tail"])
    assert result.exit_code != 0 and "no group masks" in result.output and "lucidrec evaluate --run" in result.output
