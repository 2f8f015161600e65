import json

from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


def test_compare_and_aggregate_baselines(data_dir, tmp_path):
    for model in ("pop", "cooc"):
        result = runner.invoke(app, ["evaluate", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--model", model,
                                     "--out", str(tmp_path / model)])
        assert result.exit_code == 0, result.output
    result = runner.invoke(app, ["compare", str(tmp_path / "pop"), str(tmp_path / "cooc"), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)[str(tmp_path / "cooc")]["ndcg@10"]
    assert stats["mean_b"] > stats["mean_a"] and stats["t_pvalue"] < 1e-6 and stats["n"] == 943
    result = runner.invoke(app, ["compare", str(tmp_path / "pop"), str(tmp_path / "cooc"), "--metric", "ndcg@11"])
    assert result.exit_code == 2 and "unknown --metric ndcg@11" in result.output and "ndcg@10" in result.output
    result = runner.invoke(app, ["aggregate", str(tmp_path / "pop"), str(tmp_path / "cooc"), "--json"])
    table = json.loads(result.output)
    assert table["test/full/ndcg@10"]["n"] == 2
