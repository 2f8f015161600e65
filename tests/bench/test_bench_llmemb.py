"""bench/bench_llmemb.py pairs the text variants with the finished id runs even when a call does not train them."""

from pathlib import Path
from types import SimpleNamespace

import pytest


@pytest.fixture(scope="module")
def bench_llmemb(import_bench_script):
    return import_bench_script("bench_llmemb")


def finished(folder: Path) -> Path:
    folder.mkdir(parents=True)
    (folder / "metrics.json").write_text("{}")
    return folder


def test_finished_id_runs_are_read_back_for_text_only_calls(bench_llmemb, tmp_path):
    seed1 = finished(tmp_path / "ml-1m" / "sasrec" / "id" / "seed1")
    (tmp_path / "ml-1m" / "sasrec" / "id" / "seed2").mkdir()  # killed run: no metrics.json, not a baseline
    args = SimpleNamespace(out=tmp_path, variants=["frozen", "llmemb"], seeds=[1, 2, 3])
    assert bench_llmemb.finished_baselines(args, "ml-1m", "sasrec") == {("ml-1m", "sasrec", "id"): {1: seed1}}
    assert bench_llmemb.finished_baselines(args, "ml-1m", "gru4rec") == {}


def test_calls_that_train_the_baseline_add_nothing(bench_llmemb, tmp_path):
    finished(tmp_path / "ml-1m" / "sasrec" / "id" / "seed1")
    args = SimpleNamespace(out=tmp_path, variants=["id", "llmemb"], seeds=[1])
    assert bench_llmemb.finished_baselines(args, "ml-1m", "sasrec") == {}


def test_report_shows_the_epochs_behind_the_training_time(bench_llmemb):
    # capped text runs and uncapped id runs differ in epochs; the total-time ratio is only readable next to them
    stat = lambda value: {"mean": value, "std": 0.0}  # noqa: E731
    row = {"seeds": [1], "metrics": {}, "relative_train_time": 0.5, "relative_seconds_per_epoch": 2.0,
           "costs": {"train_seconds": stat(400.0), "epochs": stat(40), "seconds_per_epoch": stat(10.0)}}
    table = bench_llmemb.markdown({"ml-1m/sasrec/llmemb": row}, "# t")
    assert "| 400, 40 ep (×0.50) | 10.0 (×2.00) |" in table


def test_tail_mask_is_read_from_the_baseline_ranks_without_the_split(bench_llmemb, tmp_path):
    import numpy as np

    users, tail = np.array([4, 7, 9]), np.array([True, False, True])
    np.savez(tmp_path / "ranks_test.npz", users=users, rank_full=np.array([1, 2, 3]), group_tail=tail)
    # a dataset that does not exist: loading the split would fail, so passing means the stored mask was used
    args = SimpleNamespace(data_dir=str(tmp_path / "nowhere"), overrides=[])
    read_users, _, groups = bench_llmemb.per_user(tmp_path)
    np.testing.assert_array_equal(bench_llmemb.tail_mask(args, "no-such-dataset", read_users, groups), tail)
