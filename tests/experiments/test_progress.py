"""The progress display's counts and its time estimate."""

from __future__ import annotations

import pytest

from lucidrec.experiments.progress import GridProgress, format_seconds


def test_the_estimate_uses_the_typical_time_of_each_cells_row(capsys):
    cells = {"d pop": "pop", "d sasrec seed 1": "sasrec/id", "d sasrec seed 2": "sasrec/id", "d gru seed 1": "gru4rec/id"}
    with GridProgress(cells, already_done=2, workers=2, live=False) as progress:
        assert progress.estimate() is None and progress.left == 4
        progress.started_cell("d pop")
        progress.finished_cell("d pop", 2.0)
        progress.started_cell("d sasrec seed 1")
        progress.finished_cell("d sasrec seed 1", 100.0)
        # left: sasrec seed 2 (its row: 100 s) and gru4rec (no cell of its row yet: the mean of all, 51 s); 2 workers
        assert progress.estimate() == pytest.approx((100.0 + 51.0) / 2)
        progress.started_cell("d gru seed 1")
        progress.failed_cell("d gru seed 1", "boom")
        assert progress.status() == "done 4, running 0, left 1, 1 failed, about 50 s left"
    lines = capsys.readouterr().err.splitlines()
    assert lines[-1].startswith("[5/6] FAILED d gru seed 1: boom")


def test_format_seconds():
    assert [format_seconds(s) for s in (5, 75, 3725)] == ["5 s", "1 min 15 s", "1 h 02 min"]


def test_the_live_display_starts_with_the_whole_grid_as_its_total():
    progress = GridProgress({"a": "row", "b": "row"}, already_done=1, workers=1, live=True)
    task = progress._rich.tasks[0]
    assert (task.total, task.completed) == (3, 1)
