import json

from typer.testing import CliRunner

from lucidrec.cli import app

runner = CliRunner()


def test_data_info_json_counts_as_stored(data_dir):
    result = runner.invoke(app, ["data", "info", "ml-100k", "--data-dir", str(data_dir), "--json"])
    assert result.exit_code == 0, result.output
    stats = json.loads(result.output)
    assert (stats["users"], stats["items"], stats["interactions"]) == (943, 1682, 100000)
    assert stats["avg_history_length"] == 100000 / 943
    assert stats["items_with_text"] == 1681  # item 267 has no title in this copy


def test_data_info_reports_filter_effect(data_dir):
    result = runner.invoke(app, ["data", "info", "ml-1m", "--data-dir", str(data_dir), "--json", "--k-core", "5"])
    stats = json.loads(result.output)
    assert stats["interactions"] == 1000209
    assert stats["filtered"]["items"] == 3416 and stats["filtered"]["users"] == 6040
    assert stats["filtered"]["report"]["dropped_by_count_filter"] == 1000209 - stats["filtered"]["interactions"]


def test_data_info_on_official_raw_only_folder_and_bad_line(data_dir):
    result = runner.invoke(app, ["data", "info", "ml-latest-small", "--data-dir", str(data_dir)])
    assert result.exit_code == 2
    assert "ratings.csv, line 522, field 'timestamp'" in result.output
    result = runner.invoke(app, ["data", "info", "ml-latest-small", "--data-dir", str(data_dir), "--skip-bad-lines", "--json"])
    assert json.loads(result.output)["interactions"] == 100835


def test_unknown_dataset_is_a_clean_error(tmp_path):
    result = runner.invoke(app, ["data", "info", "nope", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "valid datasets" in result.output


def test_evaluate_writes_flat_metric_keys(data_dir, tmp_path):
    out = tmp_path / "pop"
    result = runner.invoke(app, ["evaluate", "--dataset", "ml-100k", "--data-dir", str(data_dir), "--model", "pop",
                                 "--protocol", "full", "--protocol", "sampled", "--out", str(out)])
    assert result.exit_code == 0, result.output
    metrics = json.loads((out / "metrics.json").read_text())
    for key in ("test/full/ndcg@10", "test/full/recall@10", "test/full/mrr", "test/full/tail/ndcg@10",
                "test/sampled100/ndcg@10", "valid/full/ndcg@10"):
        assert isinstance(metrics[key], float)
    assert metrics["data_hash"] and metrics["config"]["data"]["dataset"] == "ml-100k"
    assert (out / "ranks_test.npz").is_file()
