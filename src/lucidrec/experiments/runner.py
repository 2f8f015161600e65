"""Run a grid: every cell a normal run folder (``lucidrec.methods.train_or_reuse``: a method's recipe,
then the run), then a record.

A cell whose record exists with the same config is skipped; a record of another config is an error
before anything runs (a changed grid needs another results folder, or the record deleted). A cell
killed mid-training continues from its checkpoint, because ``train_or_reuse`` resumes it. Cells run
one after another, or ``workers`` at once in local processes; a cell that refers to another cell's run
folder waits for it. A failed cell is reported (and its dependants not run); the others go on.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
import traceback
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from multiprocessing import get_context

from lucidrec.config import ConfigError
from lucidrec.errors import DataFormatError
from lucidrec.experiments.grid import Cell, CellKey, Grid, run_config, run_subfolder
from lucidrec.experiments.progress import GridProgress
from lucidrec.experiments.records import (GRID_FILE, build_record, load_record, portable_config, validation_curve,
                                          write_record)
from lucidrec.files import write_json_atomic
from lucidrec.locks import FolderInUseError, hold


class ResultsLockedError(FolderInUseError, RuntimeError):
    """Another grid writes into this results folder (one grid at a time per results folder)."""

    def describe(self) -> str:
        return (f"{self.folder} is being written by another grid ({self.holder_text}); wait for it to finish "
                "or give this grid another results folder (--results DIR)")


@dataclass
class GridOutcome:
    done: list[CellKey] = field(default_factory=list)  # finished in this call
    skipped: list[CellKey] = field(default_factory=list)  # finished before (record present)
    failed: dict[CellKey, str] = field(default_factory=dict)
    blocked: list[CellKey] = field(default_factory=list)  # not run: a cell they need failed
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.failed and not self.blocked


def cell_config(cell: Cell) -> dict:
    """The complete config of a cell as its record stores it (without machine-specific keys)."""
    config = run_config(cell)
    if cell.is_baseline:
        data, evaluation = config
        values = {"data": data.model_dump(mode="json"), "model": {"name": cell.key.model}, "eval": evaluation.model_dump(mode="json")}
    else:
        values = config.model_dump(mode="json")
    return portable_config(values)


def _record_state(grid: Grid, cell: Cell, warnings: list[str]) -> bool:
    """True when the cell's record exists for this very config; a record of another config is an error."""
    from lucidrec.train.checkpoint import config_diff

    path = grid.results_dir / f"{cell.key.slug}.json"
    if not path.is_file():
        return False
    try:
        record = load_record(path)
    except DataFormatError as exc:
        warnings.append(f"{exc}; the cell runs again")
        return False
    from lucidrec.train.migrate import migrate_run_config  # records of older versions in today's shape

    differing = config_diff(_identity(migrate_run_config(record.data["config"])), _identity(cell_config(cell)), _defaults(cell))
    if differing:
        raise ConfigError(f"{path} holds the record of another config for cell {cell.key.describe()} "
                          f"({'; '.join(differing[:5])}); give the grid another results folder or delete that record")
    return True


def _identity(config: dict) -> dict:
    """What decides whether a record is this cell's: the config without the keys that change only float rounding
    or printing in a finished run (the same rule as ``train_or_reuse``)."""
    from lucidrec.train.run import NOT_IDENTITY_WHEN_FINISHED

    train = {k: v for k, v in config.get("train", {}).items() if k not in NOT_IDENTITY_WHEN_FINISHED}
    return {**config, **({"train": train} if "train" in config else {})}


def _defaults(cell: Cell) -> dict:
    """Every option's default, so a record written before an option existed still matches when the grid leaves
    the option at its default."""
    from lucidrec.data.pipeline import DataConfig
    from lucidrec.eval.evaluator import EvalConfig
    from lucidrec.train.run import config_defaults

    if cell.is_baseline:
        return {"data": DataConfig().model_dump(mode="json"), "eval": EvalConfig().model_dump(mode="json")}
    return {"data": DataConfig().model_dump(mode="json"), **config_defaults(run_config(cell))}


def execute_cell(cell: Cell, threads: int) -> dict:
    """Run (or finish, or reuse) one cell's run folder and return its record. Runs in a worker process too."""
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    import torch

    torch.set_num_threads(threads)
    started = time.perf_counter()
    trained_before = validation_curve(cell.run_dir)  # epochs a killed (or finished) earlier call left behind
    if cell.is_baseline:
        _run_baseline(cell)
    else:
        from lucidrec.methods import train_or_reuse  # a method's recipe first (llmemb, ger)

        result = train_or_reuse(run_config(cell), cell.run_dir)
        if result.get("status") != "done":
            raise RuntimeError(f"{cell.run_dir}: training stopped before the end ({result.get('status')})")
    key = cell.key
    summary = {"dataset": key.dataset, "model": key.model, "embedding": key.embedding, "variant": key.variant,
               "seed": key.seed, "label": key.label, "run": run_subfolder(key).as_posix()}
    return build_record(summary, cell.run_dir, time.perf_counter() - started,
                        earlier_seconds=_earlier_epochs_seconds(trained_before, validation_curve(cell.run_dir)))


def _earlier_epochs_seconds(before: list[dict], after: list[dict]) -> float:
    """Training time of the epochs kept from an earlier call (a resumed or reused run folder): an epoch trained
    again in this call (after the last checkpoint) has a new log entry and counts in this call's time."""
    kept = [entry for entry in after if entry in before]
    return float(sum(entry["seconds"] or 0.0 for entry in kept))


def _run_baseline(cell: Cell) -> None:
    """A training-free baseline evaluated like ``lucidrec evaluate --out``: metrics.json and ranks_test.npz."""
    from lucidrec.data.pipeline import load_split
    from lucidrec.eval.evaluator import evaluate
    from lucidrec.eval.report import write_metrics, write_per_user
    from lucidrec.models.baselines import make_baseline

    out = cell.run_dir
    if (out / "metrics.json").is_file() and (out / "ranks_test.npz").is_file():
        return
    data_config, eval_config = run_config(cell)
    if "full" not in eval_config.protocols:
        eval_config = eval_config.model_copy(update={"protocols": ("full", *eval_config.protocols)})
    started = time.perf_counter()
    data, split = load_split(data_config)
    scorer = make_baseline(cell.key.model).fit(split)
    metrics, test = {}, None
    for part in ("valid", "test"):
        result = evaluate(scorer, split, part, eval_config)
        metrics.update(result.metrics)
        test = result if part == "test" else test
    write_per_user(out, "test", test)
    # metrics.json last: its presence marks the folder finished.
    write_metrics(out, metrics, model=cell.key.model,
                  config={"data": data_config.model_dump(mode="json"), "model": {"name": cell.key.model},
                          "eval": eval_config.model_dump(mode="json")},
                  data_hash=data.data_hash, seconds=time.perf_counter() - started)


def _execute_in_worker(cell: Cell, threads: int) -> dict:
    try:
        return {"record": execute_cell(cell, threads)}
    except Exception as exc:  # noqa: BLE001 - reported per cell; the grid goes on with the others
        return {"error": f"{type(exc).__name__}: {exc}", "trace": traceback.format_exc()}


def _init_worker(threads: int, parent: int | None = None) -> None:
    os.environ["OMP_NUM_THREADS"] = str(threads)
    os.environ["MKL_NUM_THREADS"] = str(threads)
    if parent is not None:
        threading.Thread(target=_end_with_parent, args=(parent,), daemon=True, name="parent-watch").start()


def _end_with_parent(parent: int, every: float = 1.0) -> None:
    """Without this a pool worker outlives a killed grid process and trains its cell to the end, holding the run
    folder; ended like a killed run, it leaves the cell's last checkpoint for the next `experiment run`."""
    while os.getppid() == parent:
        time.sleep(every)
    os.kill(os.getpid(), signal.SIGKILL)


def check_cores(workers: int, threads: int) -> None:
    cores = os.cpu_count() or 1
    if workers * threads > cores:
        raise ConfigError(f"{workers} workers x {threads} threads = {workers * threads} threads, more than this "
                          f"machine's {cores} cores; lower --workers or --threads")


BACKENDS = ("local", "ray")


def run_grid(grid: Grid, only: list[CellKey] | None = None, live: bool | None = None, backend: str = "local",
             address: str | None = None) -> GridOutcome:
    """Run every unfinished cell of ``grid`` (or of ``only``) and write its record into ``grid.results_dir``.

    ``backend="ray"`` sends the cells to a Ray cluster (``address``, e.g. ``ray://head:10001``; none: a local Ray
    instance), each asking for ``threads`` CPUs; records are still written here, by this process."""
    spec = grid.spec
    if backend not in BACKENDS:
        raise ConfigError(f"unknown backend '{backend}'; valid: {', '.join(BACKENDS)}")
    if backend == "local":
        check_cores(spec.workers, spec.threads)
    started = time.perf_counter()
    outcome = GridOutcome()
    with hold(grid.results_dir, holder=f"grid {spec.name} ({grid.path})", reentrant=False, error=ResultsLockedError):
        warnings: list[str] = []
        wanted = [c for c in grid.cells if only is None or c.key in only]
        finished = {c.key for c in grid.cells if _record_state(grid, c, warnings)}  # checks every record first
        for warning in warnings:
            print(f"warning: {warning}", flush=True)
        write_json_atomic(grid.results_dir / GRID_FILE, {"grid": spec.name, "file": grid.path.name,
                                                         "spec": json.loads(spec.model_dump_json())})
        outcome.skipped = [c.key for c in wanted if c.key in finished]
        todo = [c for c in wanted if c.key not in finished]
        # Cells needed by the wanted ones but not wanted themselves still have to run first.
        todo = _with_needs(grid, todo, finished)
        with GridProgress({c.key.describe(): c.key.label for c in todo}, len(outcome.skipped), spec.workers,
                          live) as progress:
            if backend == "ray":
                from lucidrec.experiments.ray_backend import RayExecutor

                with RayExecutor(address, spec.threads) as executor:
                    _run_pool(grid, todo, finished, outcome, progress, executor)
            elif spec.workers == 1:
                _run_sequential(grid, todo, finished, outcome, progress)
            else:
                # spawn, not fork: a forked child would inherit the parent's torch thread pools and locks.
                with ProcessPoolExecutor(spec.workers, mp_context=get_context("spawn"), initializer=_init_worker,
                                         initargs=(spec.threads, os.getpid())) as executor:
                    _run_pool(grid, todo, finished, outcome, progress, executor)
    outcome.seconds = time.perf_counter() - started
    return outcome


def _with_needs(grid: Grid, todo: list[Cell], finished: set[CellKey]) -> list[Cell]:
    keys = {c.key for c in todo}
    stack = list(todo)
    while stack:
        for need in stack.pop().needs:
            if need not in keys and need not in finished:
                keys.add(need)
                stack.append(grid.cell(need))
    return [c for c in grid.cells if c.key in keys]  # grid order


def _ready(cell: Cell, finished: set[CellKey]) -> bool:
    return all(need in finished for need in cell.needs)


def _blocked(cell: Cell, outcome: GridOutcome) -> bool:
    return any(need in outcome.failed or need in outcome.blocked for need in cell.needs)


def _store(grid: Grid, cell: Cell, result: dict, finished: set[CellKey], outcome: GridOutcome, progress: GridProgress) -> None:
    if "record" in result:
        write_record(grid.results_dir, cell.key.slug, result["record"])
        finished.add(cell.key)
        outcome.done.append(cell.key)
        progress.finished_cell(cell.key.describe(), result["record"]["timings"]["cell_seconds"])
    else:
        outcome.failed[cell.key] = result["error"]
        progress.failed_cell(cell.key.describe(), result["error"])


def _run_sequential(grid, todo, finished, outcome, progress) -> None:
    pending = list(todo)
    while pending:
        cell = next((c for c in pending if _ready(c, finished) or _blocked(c, outcome)), None)
        if cell is None:  # cannot happen with an acyclic grid; fail loudly rather than loop
            raise RuntimeError("no runnable cell left: " + ", ".join(c.key.describe() for c in pending))
        pending.remove(cell)
        if _blocked(cell, outcome):
            outcome.blocked.append(cell.key)
            continue
        progress.started_cell(cell.key.describe())
        _store(grid, cell, _execute_in_worker(cell, grid.spec.threads), finished, outcome, progress)


def _run_pool(grid, todo, finished, outcome, progress, executor) -> None:
    """At most ``workers`` cells at once on ``executor`` (a process pool, or the Ray executor's ``submit``)."""
    pending = list(todo)
    running: dict[Future, Cell] = {}
    while pending or running:
        for cell in [c for c in pending if _blocked(c, outcome)]:
            pending.remove(cell)
            outcome.blocked.append(cell.key)
        for cell in [c for c in pending if _ready(c, finished)]:
            if len(running) >= grid.spec.workers:
                break
            pending.remove(cell)
            progress.started_cell(cell.key.describe())
            running[executor.submit(_execute_in_worker, cell, grid.spec.threads)] = cell
        if not running:
            if pending:
                raise RuntimeError("no runnable cell left: " + ", ".join(c.key.describe() for c in pending))
            break
        completed, _ = wait(running, return_when=FIRST_COMPLETED)
        for future in completed:
            cell = running.pop(future)
            _store(grid, cell, future.result(), finished, outcome, progress)
