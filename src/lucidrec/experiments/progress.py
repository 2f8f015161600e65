"""What a running grid shows: cells done / running / left and an estimate of the time left.

With ``rich`` installed and a terminal, a live progress bar; otherwise (logs, pipes) one line per event.
The estimate sums, over the cells not finished yet, the mean wall time of the cells of the same row (model,
embedding, variant) finished in this call, or of all finished cells for a row with none yet, and divides by
the number of workers (a training-free baseline takes seconds, a trained cell minutes; cells skipped as
already finished do not count). A cell resumed from its checkpoint counts with the training time of the epochs
it kept from the killed call (its record's ``cell_seconds``), since the next cell of its row starts from scratch.
"""

from __future__ import annotations

import sys
import time


def format_seconds(seconds: float) -> str:
    seconds = int(round(seconds))
    if seconds < 60:
        return f"{seconds} s"
    if seconds < 3600:
        return f"{seconds // 60} min {seconds % 60:02d} s"
    return f"{seconds // 3600} h {seconds % 3600 // 60:02d} min"


class GridProgress:
    def __init__(self, cells: dict[str, str], already_done: int, workers: int, live: bool | None = None):
        """``cells``: the name of every cell to run -> its row label (cells of a row take about as long)."""
        self.cells = dict(cells)
        self.total, self.done, self.workers = len(cells) + already_done, already_done, workers
        self.running: set[str] = set()
        self.failed = 0
        self.finished: set[str] = set()
        self.durations: dict[str, list[float]] = {}
        self.started = time.perf_counter()
        self._rich = None
        if live is None:
            live = sys.stderr.isatty()
        if live:
            try:
                from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn
            except ImportError:
                live = False
            else:
                self._rich = Progress(TextColumn("{task.description}"), BarColumn(), TextColumn("{task.completed}/{task.total}"),
                                      TimeElapsedColumn(), TextColumn("{task.fields[status]}"), transient=False)
                self._task = self._rich.add_task("grid", total=self.total, completed=already_done, status=self.status())

    def __enter__(self):
        if self._rich is not None:
            self._rich.start()
        return self

    def __exit__(self, *exc):
        if self._rich is not None:
            self._rich.stop()

    @property
    def left(self) -> int:
        return self.total - self.done - self.failed - len(self.running)

    def estimate(self) -> float | None:
        if not self.durations:
            return None
        every = [d for values in self.durations.values() for d in values]
        overall = sum(every) / len(every)

        def typical(label: str) -> float:
            values = self.durations.get(label)
            return sum(values) / len(values) if values else overall

        remaining = [label for name, label in self.cells.items() if name not in self.finished]
        return sum(typical(label) for label in remaining) / max(self.workers, 1)

    def status(self) -> str:
        estimate = self.estimate()
        eta = "" if estimate is None else f", about {format_seconds(estimate)} left"
        failed = f", {self.failed} failed" if self.failed else ""
        return f"done {self.done}, running {len(self.running)}, left {self.left}{failed}{eta}"

    def _show(self, line: str) -> None:
        if self._rich is not None:
            self._rich.update(self._task, completed=self.done + self.failed, status=self.status())
            self._rich.console.print(line)
        else:
            print(f"[{self.done + self.failed}/{self.total}] {line} ({self.status()})", file=sys.stderr, flush=True)

    def started_cell(self, name: str) -> None:
        self.running.add(name)
        self._show(f"start {name}")

    def finished_cell(self, name: str, seconds: float) -> None:
        self.running.discard(name)
        self.done += 1
        self.finished.add(name)
        self.durations.setdefault(self.cells.get(name, ""), []).append(seconds)
        self._show(f"done  {name} in {format_seconds(seconds)}")

    def failed_cell(self, name: str, reason: str) -> None:
        self.running.discard(name)
        self.failed += 1
        self.finished.add(name)
        self._show(f"FAILED {name}: {reason}")
