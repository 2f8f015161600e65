"""Measurement records (the figures of benchmarks that are not grids): written, read back, rendered by the report
as tables; a damaged one named and skipped."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from lucidrec.errors import DataFormatError
from lucidrec.experiments.measurements import (build_measurement, format_value, load_measurement, portable_command,
                                               write_measurement, Column)
from lucidrec.experiments.records import read_records
from lucidrec.experiments.report import build_report, markdown, write_report
from tests.experiments.helpers import make_record, save

MACHINE = {"cpus": 2, "processor": "x86_64", "torch": "2.13.0", "torch_threads": 1, "load_average": [1.5, 2.0, 2.25]}
TABLE = {"title": "Costs",
         "columns": [{"name": "dataset"}, {"name": "seconds", "digits": 2}, {"name": "items"},
                     {"name": "ratio", "digits": 1, "suffix": "×"}, {"name": "gap"}],
         "rows": [["ml-1m", np.float64(0.8123), np.int64(3706), 5.44, 1.5e-7], ["tiny", None, 12101, None, True]],
         "note": "A note."}

EXPECTED = """# Results

1 measurement record from results.

## Fake measurement

`python bench/fake.py --threads 1` (results/fake.json); machine: 2 CPUs (x86_64), torch 2.13.0 with 1 thread(s), load average 1.50 / 2.00 / 2.25.

### Costs

| dataset | seconds | items | ratio | gap |
|---|---|---|---|---|
| ml-1m | 0.81 | 3,706 | 5.4× | 1.5e-07 |
| tiny | — | 12,101 | — | yes |

A note.
"""


def fake(name: str = "fake", table: dict = TABLE) -> dict:
    return build_measurement(name, "Fake measurement", [table], command="python bench/fake.py --threads 1",
                             machine=MACHINE, extra={"raw": np.array([1.0, 2.0])})


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    write_measurement(Path("results") / "fake.json", fake())
    return Path("results")


def test_record_round_trip_keeps_raw_values(results):
    loaded = load_measurement(results / "fake.json")
    assert loaded.name == "fake" and loaded.command == "python bench/fake.py --threads 1"
    assert loaded.tables[0].rows == [["ml-1m", 0.8123, 3706, 5.44, 1.5e-7], ["tiny", None, 12101, None, True]]
    assert loaded.machine == MACHINE
    assert loaded.extra == {"raw": [1.0, 2.0]}
    assert json.loads((results / "fake.json").read_text())["kind"] == "measurement"


def test_report_renders_the_record_as_its_table(results, tmp_path):
    assert markdown(build_report([results])) == EXPECTED
    report = write_report([results], tmp_path / "report")
    assert (tmp_path / "report" / "report.md").read_text() == EXPECTED
    page = (tmp_path / "report" / "report.html").read_text()
    assert "<h2>Fake measurement</h2>" in page and "<td>3,706</td>" in page and "<td>5.4×</td>" in page
    summary = json.loads((tmp_path / "report" / "summary.json").read_text())
    assert summary["measurements/results/fake.json"]["tables"][0]["rows"][0][2] == 3706
    assert report.warnings == []


def test_report_files_are_identical_for_the_same_records(results, tmp_path):
    write_measurement(results / "other.json", fake("other"))
    write_report([results], tmp_path / "a")
    write_report([results], tmp_path / "b")
    for name in ("report.md", "report.html", "summary.json"):
        assert (tmp_path / "a" / name).read_bytes() == (tmp_path / "b" / name).read_bytes()


def test_grid_and_measurement_records_share_a_folder(results):
    save(results, make_record("d", "pop", None, None, [1, 2, 3]))
    records, skipped = read_records([results])
    assert [r.cell["model"] for r in records] == ["pop"] and skipped == []
    report = build_report([results])
    assert [r.label for r in report.rows] == ["pop"]
    assert [m.title for m in report.measurements] == ["Fake measurement"]
    text = markdown(report)
    assert text.index("## d") < text.index("## Fake measurement")
    assert "1 records from results; metric: ndcg@10; 1 measurement record." in text


def test_damaged_measurement_record_is_named_and_skipped(results):
    broken = fake("broken")
    broken["tables"][0]["rows"][1] = ["tiny", 1.0]  # two values for five columns
    (results / "broken.json").write_text(json.dumps(broken))
    (results / "cut.json").write_text('{"kind": "measurement", "tables": [')  # a killed hand-made write
    report = build_report([results])
    assert [m.title for m in report.measurements] == ["Fake measurement"]
    assert len(report.warnings) == 2
    broken_warning = next(w for w in report.warnings if "broken.json" in w)
    assert "tables.0" in broken_warning and "2 values for 5 columns" in broken_warning
    assert any("cut.json" in w and "not valid JSON" in w for w in report.warnings)
    assert "**Skipped records:**" in markdown(report)


def test_loading_a_damaged_record_names_the_field(tmp_path):
    record = fake()
    del record["command"]
    path = tmp_path / "x.json"
    path.write_text(json.dumps(record))
    with pytest.raises(DataFormatError, match=r"x\.json, field 'command'"):
        load_measurement(path)


def test_rows_that_do_not_fit_the_columns_are_refused_before_writing(tmp_path):
    with pytest.raises(ValueError, match="row 0 of table 'Costs' has 1 values for 5 columns"):
        build_measurement("x", "X", [{**TABLE, "rows": [["only one"]]}], command="c", machine={})


@pytest.mark.parametrize("value, column, text", [
    (1234567, Column(name="n"), "1,234,567"),
    (0.123456, Column(name="x"), "0.1235"),
    (2.5, Column(name="x", digits=0), "2"),
    (1028.4, Column(name="s", digits=1, suffix=" s"), "1,028.4 s"),
    (None, Column(name="x", digits=2), "—"),
    (False, Column(name="ok"), "no"),
    ("3 / 4", Column(name="x", digits=2), "3 / 4"),
])
def test_values_are_formatted_by_their_column(value, column, text):
    assert format_value(value, column) == text


def test_recorded_command_names_no_folder_of_the_machine(tmp_path):
    inside = tmp_path / "bench" / "x.py"
    command = portable_command([str(inside), "--cornac-python", "/opt/envs/cornac/bin/python",
                                f"--record={tmp_path / 'results' / 'r.json'}", "--table", "scft=/data/t/table.npy",
                                "--threads", "1"], cwd=tmp_path)
    assert command == ("python bench/x.py --cornac-python .../bin/python --record=results/r.json "
                       "--table scft=.../t/table.npy --threads 1")
