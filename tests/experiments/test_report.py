"""Aggregation and the report: mean ± std, ratios and paired tests against hand-computed values; tables,
determinism, damaged records."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.errors import UnknownNameError
from lucidrec.experiments.report import build_report, markdown, write_report
from tests.experiments.helpers import make_record, save

BASE_RANKS = [9, 9, 9, 9, 9]  # MRR 0.1 each
SEED1 = [0, 1, 2, 3, 4]  # MRR 1, 1/2, 1/3, 1/4, 1/5
SEED2 = [1, 1, 2, 3, 9]  # MRR 1/2, 1/2, 1/3, 1/4, 1/10
TAIL = np.array([True, True, False, False, False])


@pytest.fixture
def results(tmp_path):
    folder = tmp_path / "results"
    save(folder, make_record("d", "pop", None, None, BASE_RANKS, {"tail": TAIL, "head": ~TAIL}))
    save(folder, make_record("d", "sasrec", "id", 1, SEED1, {"tail": TAIL, "head": ~TAIL},
                             curve=[{"epoch": 0, "valid_ndcg10": 0.1}, {"epoch": 1, "valid_ndcg10": 0.2}]))
    save(folder, make_record("d", "sasrec", "id", 2, SEED2, {"tail": TAIL, "head": ~TAIL}))
    return folder


def test_mean_std_ratio_and_paired_test_match_hand_computed_values(results):
    report = build_report([results], baseline="pop", metric="mrr")
    row = next(r for r in report.rows if r.label == "sasrec/id")
    mrr1 = (1 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 5) / 5
    mrr2 = (1 / 2 + 1 / 2 + 1 / 3 + 1 / 4 + 1 / 10) / 5
    stat = row.stats["test/full/mrr"]
    assert stat["mean"] == pytest.approx((mrr1 + mrr2) / 2)
    assert stat["std"] == pytest.approx(abs(mrr1 - mrr2) / math.sqrt(2))  # sample std of two values
    assert row.ratio["overall"] == pytest.approx((mrr1 + mrr2) / 2 / 0.1)
    tail = ((1 + 1 / 2) / 2 + (1 / 2 + 1 / 2) / 2) / 2
    assert row.ratio["tail"] == pytest.approx(tail / 0.1)
    # Paired test on per-user MRR averaged over the two seeds, against the seedless baseline.
    diff = np.array([(1 + 1 / 2) / 2, (1 / 2 + 1 / 2) / 2, 1 / 3, 1 / 4, (1 / 5 + 1 / 10) / 2]) - 0.1
    t = diff.mean() / (diff.std(ddof=1) / math.sqrt(5))
    assert row.test["diff"] == pytest.approx(diff.mean())
    assert row.test["t_pvalue"] == pytest.approx(2 * stats.t.sf(t, df=4))
    assert row.test["wilcoxon_pvalue"] == pytest.approx(2 / 2**5)  # all 5 differences positive: exact 2 * (1/2)^5


def test_seeds_are_paired_when_both_rows_have_them(tmp_path):
    folder = tmp_path / "results"
    for seed, base, mine in ((1, [5, 5, 5, 5], [0, 1, 5, 5]), (2, [1, 1, 1, 1], [1, 1, 1, 0]), (3, [0, 0, 0, 0], [0, 0, 0, 0])):
        save(folder, make_record("d", "sasrec", "id", seed, base))
        if seed != 3:
            save(folder, make_record("d", "sasrec", "llmemb", seed, mine))
    row = next(r for r in build_report([folder], baseline="sasrec/id", metric="mrr").rows if r.label == "sasrec/llmemb")
    base = np.array([(1 / 6 + 1 / 2) / 2] * 4)  # seed 3 has no partner: left out of the pairing
    mine = np.array([(1 + 1 / 2) / 2, (1 / 2 + 1 / 2) / 2, (1 / 6 + 1 / 2) / 2, (1 / 6 + 1) / 2])
    assert row.test["mean_a"] == pytest.approx(base.mean()) and row.test["mean_b"] == pytest.approx(mine.mean())
    assert row.test_note == "per-user mrr averaged over seeds 1, 2"


def test_report_tables_have_one_line_per_row_with_ratio_and_group_columns(results):
    text = markdown(build_report([results], baseline="pop", metric="mrr"))
    assert "| row | seeds | mrr | ndcg@10 | recall@10 | × pop | Δmrr (paired t p, Wilcoxon p) |" in text
    assert "| pop | — | 0.1000 | 0.2891 | 1.0000 | 1.000 | baseline |" in text  # rank 9: NDCG@10 1/log2(11)
    sasrec = next(line for line in text.splitlines() if line.startswith("| sasrec/id | 1, 2 |"))
    assert "| 0.3967 ± 0.0849 |" in sasrec and "| 3.967 |" in sasrec and "+0.2967 (0.048, 0.062)" in sasrec
    assert "| row | overall mrr (n=5) | tail mrr (n=2) | head mrr (n=3) |" in text
    assert "| sasrec/id | 0.3967 ± 0.0849 (3.97×) | 0.6250 ± 0.1768 (6.25×) | 0.2444 ± 0.0236 (2.44×) |" in text


def test_the_same_records_give_the_same_files(results, tmp_path):
    first, second = tmp_path / "a", tmp_path / "b"
    write_report([results], first, baseline="pop")
    write_report([results], second, baseline="pop")
    names = sorted(p.name for p in first.iterdir())
    assert names == ["d_cost.png", "d_curves.png", "d_groups.png", "report.html", "report.md", "summary.json"]
    for name in names:
        assert (first / name).read_bytes() == (second / name).read_bytes(), name
    html = (first / "report.html").read_text()
    assert html.count("data:image/png;base64,") == 3 and "src='d_" not in html


def test_a_damaged_record_is_named_and_skipped_with_a_warning(results, tmp_path):
    damaged = results / "d__broken.json"
    damaged.write_text('{"format": 1, "cell": {}}')
    report = build_report([results], baseline="pop")
    assert len(report.rows) == 2
    assert report.warnings == [f"skipped damaged record {damaged}: not a result record (missing config, data_hash, "
                               "metrics, timings, per_user)"]
    assert f"- skipped damaged record {damaged}" in markdown(report)


def test_unknown_baseline_names_the_rows(results):
    with pytest.raises(UnknownNameError, match="unknown baseline row 'sasrec'; valid baseline rows: pop, sasrec/id"):
        build_report([results], baseline="sasrec")


def test_report_command(results, tmp_path):
    out = tmp_path / "report"
    result = CliRunner().invoke(app, ["report", str(results), "--out", str(out), "--baseline", "pop", "--no-plots"])
    assert result.exit_code == 0, result.output
    assert (out / "report.md").is_file() and not list(out.glob("*.png"))
    bad = CliRunner().invoke(app, ["report", str(tmp_path / "missing"), "--out", str(out)])
    assert bad.exit_code == 2 and "no such results folder" in bad.output


def test_a_model_placeholder_compares_each_backbone_with_its_own_id_row(tmp_path):
    folder = tmp_path / "results"
    for model, base, mine in (("sasrec", [1, 1, 1], [0, 0, 1]), ("gru4rec", [3, 3, 3], [1, 1, 0])):
        save(folder, make_record("d", model, "id", 1, base))
        save(folder, make_record("d", model, "llmemb", 1, mine))
    rows = {r.label: r for r in build_report([folder], baseline="{model}/id", metric="mrr").rows}
    assert rows["sasrec/llmemb"].ratio["overall"] == pytest.approx((1 + 1 + 0.5) / 3 / 0.5)
    assert rows["gru4rec/llmemb"].ratio["overall"] == pytest.approx((0.5 + 0.5 + 1) / 3 / 0.25)
    assert rows["gru4rec/id"].ratio["overall"] == 1.0 and rows["gru4rec/id"].test is None
    with pytest.raises(UnknownNameError, match="unknown baseline row '{model}/frozen'"):
        build_report([folder], baseline="{model}/frozen")


def test_the_committed_quick_records_still_read_and_report():
    from pathlib import Path

    from lucidrec.experiments.records import read_records

    folder = Path(__file__).resolve().parents[2] / "results" / "quick"
    records, skipped = read_records([folder])
    assert len(records) == 6 and not skipped
    assert all(r.path.stat().st_size < 300_000 for r in records)
    report = build_report([folder])  # the grid's own baseline (pop), from grid.json
    rows = {(r.dataset, r.label): r for r in report.rows}
    assert set(rows) == {(d, label) for d in ("ml-100k", "amazon-scientific") for label in ("pop", "sasrec/id")}
    assert rows[("ml-100k", "sasrec/id")].test is not None and rows[("ml-100k", "pop")].ratio["overall"] == 1.0
