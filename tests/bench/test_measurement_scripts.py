"""The bench measurement scripts turn their results into valid measurement records (every row fits the columns,
derived figures are computed from the raw ones), without running the measurements."""

from __future__ import annotations

from lucidrec.experiments.measurements import MeasurementRecord, build_measurement
from lucidrec.experiments.report import measurement_markdown, measurement_section


def rendered(table: dict) -> dict[str, str]:
    """The first row of the table as the report prints it, by column name."""
    record = build_measurement("t", "T", [table], command="python bench/t.py", machine={})
    section = measurement_section("t.json", MeasurementRecord.model_validate(record))
    return dict(zip(section.tables[0].header, section.tables[0].rows[0]))


def test_ce_loss_record(import_bench_script):
    script = import_bench_script("bench_ce_loss")
    result = {"dataset": "ml-1m", "model": "sasrec", "items": 3706, "rows_per_step": 6000.4, "batches_per_epoch": 48,
              "loss_gap": {"dense": 0.0, "chunked": 2.5e-7}, "seconds": {"dense": 3.0, "chunked": 1.5}}
    row = rendered(script.record_table([result], ["dense", "chunked"]))
    assert row["chunked speed-up"] == "2.00×"
    assert row["dense projected epoch s"] == "144" and row["chunked projected epoch s"] == "72"
    assert row["chunked loss difference, same weights"] == "2.5e-07"
    assert row["items"] == "3,706"


def test_padding_loss_record(import_bench_script):
    script = import_bench_script("bench_padding_loss")
    names = list(script.VARIANTS)
    seconds = dict(zip(names, (0.8, 0.4, 0.2, 0.1)))
    result = {"model": "sasrec", "max_len": 200, "items": 12101, "seconds": seconds,
              "mean_width": dict(zip(names, (200.0, 60.0, 30.0, 60.0))), "cells": {"padded": 10, "cut": 5, "bucketed": 2},
              "eval_seconds": {"padded": 3.0, "cut": 1.0}, "eval_width": [5, 9, 20, 200]}
    row = rendered(script.record_table([result], "amazon-beauty", 128, 6))
    assert row["speed-up, cut"] == "2.00×" and row["speed-up, bucketed"] == "4.00×"
    assert row["speed-up, sampled softmax over cut ce"] == "4.00×"
    assert row["evaluation cut widths"] == "5/9/20/200"


def test_cli_matrix_record_keeps_failed_cells(import_bench_script):
    script = import_bench_script("cli_matrix")
    args = type("Args", (), {"epochs": 1, "max_len": 50})()
    cells = [{"dataset": "ml-100k", "model": "sasrec", "embedding": "ger", "exit": 0, "seconds": 12.3, "n_users": 943,
              "ndcg@10": 0.01, "recall@10": 0.02, "tail/ndcg@10": None, "seconds_per_epoch": 4.0,
              "explain": {"user": "1", "exit": 0, "check_ok": True, "max_drop_error": 4.5e-8, "guided_share_top1": 0.25}},
             {"dataset": "ml-1m", "model": "caser", "embedding": "id", "exit": 1, "seconds": 2.0,
              "error": ["Traceback", "ValueError: boom"]}]
    table = script.record_table(cells, args)
    assert rendered(table)["explain --check (user: pass, max error, guided share of the top item)"] == "1: pass, 4.5e-08, 25%"
    text = measurement_markdown(build_measurement("t", "T", [table], command="c", machine={}), "t.json")
    assert "| ml-1m | caser | id | 1 | — | — | — | — | — | 2 | — | Traceback / ValueError: boom |" in text


def test_every_measurement_script_writes_a_record():
    """A bench script without a --record option prints figures that live nowhere."""
    from pathlib import Path

    bench = Path(__file__).resolve().parents[2] / "bench"
    measurement_scripts = ["bench_data_eval", "bench_ce_loss", "bench_padding_loss", "bench_lm", "bench_serve",
                           "speed_vs_recbole", "crosscheck_cornac", "ger_scoring_cost", "cli_matrix",
                           "sasrec_design_ablation", "diagnose_text_table"]
    for name in measurement_scripts:
        text = (bench / f"{name}.py").read_text()
        assert '"--record"' in text and "publish_measurement(" in text, name
