"""Running grids: records per cell, finished cells skipped, killed ones resumed, the results lock."""

from __future__ import annotations

import json

import pytest

from lucidrec.config import ConfigError
from lucidrec.experiments import runner
from lucidrec.experiments.grid import CellKey, load_grid
from lucidrec.experiments.records import load_record, read_records
from lucidrec.experiments.runner import ResultsLockedError
from lucidrec.locks import hold
from lucidrec.train.run import train_run
from tests.experiments.helpers import write_grid
from tests.synthetic import write_cyclic

GRID = 'datasets = ["cyclic"]\nmodels = ["pop", "sasrec"]\nseeds = [1, 2]\nbaseline = "pop"\n'


@pytest.fixture
def grid_file(tmp_path):
    write_cyclic(tmp_path / "data")
    return write_grid(tmp_path, GRID)


def _load(tmp_path, path, **kwargs):
    return load_grid(path, data_dir=str(tmp_path / "data"), results=str(tmp_path / "results"),
                     runs=str(tmp_path / "runs"), **kwargs)


def _spy(monkeypatch) -> list:
    calls = []
    real = runner.execute_cell

    def counting(cell, threads):
        calls.append(cell.key)
        return real(cell, threads)

    monkeypatch.setattr(runner, "execute_cell", counting)
    return calls


def test_grid_writes_a_small_record_per_cell_and_skips_finished_cells(tmp_path, grid_file, monkeypatch):
    calls = _spy(monkeypatch)
    grid = _load(tmp_path, grid_file)
    outcome = runner.run_grid(grid, live=False)
    assert outcome.ok and len(outcome.done) == 3 and len(calls) == 3
    records, skipped = read_records([grid.results_dir])
    assert len(records) == 3 and not skipped
    for record in records:
        assert record.path.stat().st_size < 300_000
        assert "data_dir" not in record.data["config"]["data"]
        assert record.data["metrics"]["test/full/ndcg@10"] >= 0
        assert len(record.ranks()) == record.data["per_user"]["n"] == 120
        assert set(record.groups()) >= {"tail", "head"}
    trained = load_record(grid.results_dir / "cyclic__sasrec__id__default__seed1.json")
    assert [e["epoch"] for e in trained.data["curve"]] == [0, 1]
    assert json.loads((grid.results_dir / "grid.json").read_text())["spec"]["baseline"] == "pop"
    assert trained.cell["run"] == "cyclic/sasrec/id/default/seed1"  # no machine path in a committable record

    # A record written before an option existed matches when the grid leaves the option at its default.
    path = grid.results_dir / "cyclic__sasrec__id__default__seed1.json"
    older = json.loads(path.read_text())
    del older["config"]["train"]["history_window"]
    path.write_text(json.dumps(older))

    again = runner.run_grid(_load(tmp_path, grid_file), live=False)
    assert len(again.skipped) == 3 and not again.done and len(calls) == 3


def test_a_killed_cell_resumes_from_its_checkpoint(tmp_path, grid_file, monkeypatch):
    grid = _load(tmp_path, grid_file)
    cell = grid.cell(CellKey("cyclic", "sasrec", "id", "default", 1))
    killed = train_run(runner.run_config(cell), cell.run_dir, stop_after_epochs=1)
    assert killed["status"] == "interrupted"
    first_epoch = (cell.run_dir / "log.jsonl").read_text().splitlines()[0]
    resumed = []
    import lucidrec.train.run as run_module  # train_or_reuse calls train_run from there: resume=True is the proof

    original = run_module.train_run

    def spying_train_run(config, out, resume=False, stop_after_epochs=None):
        resumed.append((str(out), resume))
        return original(config, out, resume=resume, stop_after_epochs=stop_after_epochs)

    monkeypatch.setattr(run_module, "train_run", spying_train_run)
    outcome = runner.run_grid(grid, live=False)
    assert outcome.ok
    assert (str(cell.run_dir), True) in resumed
    log = (cell.run_dir / "log.jsonl").read_text().splitlines()
    assert log[0] == first_epoch and len(log) == 2  # epoch 0 kept from the killed call, epoch 1 trained now


def test_a_resumed_cell_counts_its_earlier_epochs_in_the_time_the_estimate_learns(tmp_path, monkeypatch):
    """The progress estimate takes a finished cell's time as what the next cell of its row will take: for a cell
    resumed from its checkpoint that is this call's time plus the epochs trained before the kill."""
    from lucidrec.experiments.progress import GridProgress

    write_cyclic(tmp_path / "data")
    grid = _load(tmp_path, write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["sasrec"]\nseeds = [1, 2]\n'))
    cell = grid.cell(CellKey("cyclic", "sasrec", "id", "default", 1))
    assert train_run(runner.run_config(cell), cell.run_dir, stop_after_epochs=1)["status"] == "interrupted"
    log = cell.run_dir / "log.jsonl"
    first = json.loads(log.read_text().splitlines()[0])
    log.write_text(json.dumps({**first, "seconds": 500.0}) + "\n")  # the killed call's epoch took 500 s
    learned = {}
    real = GridProgress.finished_cell

    def spying_finished_cell(self, name, seconds):
        learned[name] = (seconds, self.estimate())
        return real(self, name, seconds)

    monkeypatch.setattr(GridProgress, "finished_cell", spying_finished_cell)
    assert runner.run_grid(grid, live=False).ok
    resumed_seconds, _ = learned[cell.key.describe()]
    timings = load_record(grid.results_dir / f"{cell.key.slug}.json").data["timings"]
    assert resumed_seconds > 500.0
    assert resumed_seconds == pytest.approx(500.0 + timings["cell_seconds_this_call"])
    assert timings["cell_seconds"] == pytest.approx(500.0 + timings["cell_seconds_this_call"])
    assert timings["training_seconds"] > 500.0
    # seed 2 (same row, trained from scratch) was estimated from the resumed cell's full time
    _, estimate_before_seed2 = learned[grid.cell(CellKey("cyclic", "sasrec", "id", "default", 2)).key.describe()]
    assert estimate_before_seed2 == pytest.approx(resumed_seconds)
    fresh = load_record(grid.results_dir / f"{grid.cell(CellKey('cyclic', 'sasrec', 'id', 'default', 2)).key.slug}.json").data
    assert "cell_seconds_this_call" not in fresh["timings"]


def test_a_record_of_another_config_is_an_error_before_any_cell_runs(tmp_path, grid_file, monkeypatch):
    runner.run_grid(_load(tmp_path, grid_file), live=False)
    calls = _spy(monkeypatch)
    grid_file.write_text(grid_file.read_text().replace("epochs = 2", "epochs = 3"))
    with pytest.raises(ConfigError, match=r"cyclic__sasrec__id__default__seed1.json holds the record of another config .*train.epochs: 2 -> 3"):
        runner.run_grid(_load(tmp_path, grid_file), live=False)
    assert calls == []


def test_a_damaged_record_is_named_and_its_cell_runs_again(tmp_path, grid_file, monkeypatch, capsys):
    grid = _load(tmp_path, grid_file)
    runner.run_grid(grid, live=False)
    damaged = grid.results_dir / "cyclic__pop__default.json"
    damaged.write_text(damaged.read_text()[:200])
    calls = _spy(monkeypatch)
    outcome = runner.run_grid(grid, live=False)
    assert calls == [CellKey("cyclic", "pop", None, "default", None)] and outcome.ok
    assert f"warning: {damaged}" in capsys.readouterr().out
    load_record(damaged)  # whole again


def test_a_second_grid_on_the_same_results_folder_is_refused(tmp_path, grid_file):
    grid = _load(tmp_path, grid_file)
    with hold(grid.results_dir, holder="grid other", reentrant=False):
        with pytest.raises(ResultsLockedError, match=r"being written by another grid \(grid other, pid"):
            runner.run_grid(grid, live=False)
    assert not list(grid.results_dir.glob("cyclic__*.json"))
    assert runner.run_grid(grid, live=False).ok  # released when the holder is done


def test_a_failed_cell_is_reported_and_its_dependants_not_run(tmp_path, monkeypatch):
    write_cyclic(tmp_path / "data")
    path = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["sasrec"]\nembeddings = ["id", "frozen"]\n'
                      '[variants.default]\nembeddings = ["id"]\n[variants.on_id]\nembeddings = ["frozen"]\n'
                      'set = { "embedding.path" = "{run:embedding=id,variant=default}" }\n')
    grid = _load(tmp_path, path)

    def broken(cell, threads):
        raise RuntimeError("out of memory")

    monkeypatch.setattr(runner, "execute_cell", broken)
    outcome = runner.run_grid(grid, live=False)
    assert list(outcome.failed.values()) == ["RuntimeError: out of memory"]
    assert outcome.blocked == [CellKey("cyclic", "sasrec", "frozen", "on_id", 1)] and not outcome.ok


def test_workers_times_threads_may_not_exceed_the_cores(tmp_path, grid_file, monkeypatch):
    monkeypatch.setattr(runner.os, "cpu_count", lambda: 2)
    with pytest.raises(ConfigError, match="2 workers x 2 threads = 4 threads, more than this machine's 2 cores"):
        runner.run_grid(_load(tmp_path, grid_file, workers=2, threads=2), live=False)


@pytest.mark.slow
def test_a_process_pool_runs_the_cells(tmp_path):
    write_cyclic(tmp_path / "data")
    write_cyclic(tmp_path / "data", name="other", n_users=60)
    path = write_grid(tmp_path, 'datasets = ["cyclic", "other"]\nmodels = ["pop", "cooc"]\n')
    outcome = runner.run_grid(_load(tmp_path, path, workers=2), live=False)
    assert outcome.ok and len(outcome.done) == 4


def test_experiment_command_runs_a_grid_and_rejects_a_bad_one(tmp_path):
    from typer.testing import CliRunner

    from lucidrec.cli import app

    write_cyclic(tmp_path / "data")
    good = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["pop"]\n', name="good")
    common = ["--data-dir", str(tmp_path / "data"), "--results", str(tmp_path / "results"), "--runs", str(tmp_path / "runs")]
    result = CliRunner().invoke(app, ["experiment", "run", str(good), "--plain", *common])
    assert result.exit_code == 0, result.output
    assert "1 cells run, 0 already finished, 0 failed" in result.output
    assert (tmp_path / "results" / "cyclic__pop__default.json").is_file()
    bad = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["pop"]\nseed = [1]\n', name="bad")
    result = CliRunner().invoke(app, ["experiment", "run", str(bad), *common])
    assert result.exit_code == 2 and "unknown key 'seed' (valid keys: " in result.output


def test_only_the_selected_variant_runs_with_the_cells_it_needs(tmp_path, monkeypatch):
    from lucidrec.experiments.grid import select_cells

    write_cyclic(tmp_path / "data")
    path = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["pop", "sasrec"]\nembeddings = ["id", "frozen"]\n'
                      '[variants.default]\nembeddings = ["id"]\n[variants.on_id]\nembeddings = ["frozen"]\n'
                      'set = { "embedding.path" = "{run:embedding=id,variant=default}" }\n')
    grid = _load(tmp_path, path)
    with pytest.raises(ConfigError, match="unknown variant 'on-id'; valid: default, on_id"):
        select_cells(grid, [], ["on-id"])
    ran = []
    monkeypatch.setattr(runner, "execute_cell", lambda cell, threads: ran.append(cell.key) or (_ for _ in ()).throw(RuntimeError("stop")))
    outcome = runner.run_grid(grid, only=select_cells(grid, [], ["on_id"]), live=False)
    assert ran == [CellKey("cyclic", "sasrec", "id", "default", 1)]  # the needed cell first; it failed, so:
    assert outcome.blocked == [CellKey("cyclic", "sasrec", "frozen", "on_id", 1)]


@pytest.mark.slow
def test_the_ray_backend_runs_the_cells_on_a_local_two_cpu_instance(tmp_path):
    ray = pytest.importorskip("ray")
    write_cyclic(tmp_path / "data")
    write_cyclic(tmp_path / "data", name="other", n_users=60)
    path = write_grid(tmp_path, 'datasets = ["cyclic", "other"]\nmodels = ["pop", "cooc"]\n')
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        outcome = runner.run_grid(_load(tmp_path, path, workers=2), live=False, backend="ray")
    finally:
        ray.shutdown()
    assert outcome.ok and len(outcome.done) == 4
    records, _ = read_records([tmp_path / "results"])
    assert sorted(r.cell["model"] for r in records) == ["cooc", "cooc", "pop", "pop"]


def test_an_unknown_backend_names_the_valid_ones(tmp_path, grid_file):
    with pytest.raises(ConfigError, match="unknown backend 'slurm'; valid: local, ray"):
        runner.run_grid(_load(tmp_path, grid_file), backend="slurm")


def test_a_method_cell_runs_its_recipe(tmp_path, monkeypatch):
    # A GER cell: the recipe's stages (base run, attribute scores) run before the cell's own run.
    write_cyclic(tmp_path / "data")
    body = ('datasets = ["cyclic"]\nmodels = ["sasrec"]\nembeddings = ["ger"]\nseeds = [1]\nbaseline = "sasrec/ger"\n'
            '[variants.default]\nset = { "embedding.attributes" = "movies", "embedding.scorer.kind" = "llm", '
            '"embedding.scorer.llm" = { backend = "mock" }, "embedding.base.epochs" = 1, '
            f'"embedding.cache_dir" = "{tmp_path / "cache"}" }}\n')
    grid = _load(tmp_path, write_grid(tmp_path, body))
    outcome = runner.run_grid(grid, live=False)
    assert outcome.ok and len(outcome.done) == 1
    run = tmp_path / "runs" / "cyclic" / "sasrec" / "ger" / "default" / "seed1"
    assert (run / "ger" / "meta.json").is_file() and (run / "metrics.json").is_file()

    # The record written in the flat GER shape (before the stage sections) is still this cell's.
    from lucidrec.embeddings.ger.config import FLAT_KEYS

    path = next(p for p in (tmp_path / "results").glob("*.json") if "__ger__" in p.name)
    record = json.loads(path.read_text())
    nested = record["config"]["embedding"]
    sections = {section for section, _ in FLAT_KEYS.values()}
    flat = {key: value for key, value in nested.items() if key not in sections}
    flat.update({old: nested[section][field] for old, (section, field) in FLAT_KEYS.items()
                 if field in nested.get(section, {})})
    assert flat["scorer"] == "llm" and flat["base_epochs"] == 1
    record["config"]["embedding"] = flat
    path.write_text(json.dumps(record))
    calls = _spy(monkeypatch)
    assert runner.run_grid(_load(tmp_path, write_grid(tmp_path, body)), live=False).ok and calls == []


def test_killing_the_grid_process_ends_its_workers(tmp_path):
    """A SIGKILLed `experiment run` must not leave pool workers training on (and holding the run folders)."""
    import os
    import signal
    import subprocess
    import sys
    import time

    write_cyclic(tmp_path / "data", n_users=400)
    path = write_grid(tmp_path, 'datasets = ["cyclic"]\nmodels = ["sasrec"]\nseeds = [1, 2]\n',
                      config="[config]\nmodel = { hidden = 16, max_len = 10 }\ntrain = { epochs = 500, batch_size = 8 }\n")
    grid = subprocess.Popen([sys.executable, "-m", "lucidrec", "experiment", "run", str(path), "--plain", "--workers", "2",
                             "--data-dir", str(tmp_path / "data"), "--results", str(tmp_path / "results"),
                             "--runs", str(tmp_path / "runs")], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    from lucidrec.locks import holder_pid

    folders = [tmp_path / "runs" / "cyclic" / "sasrec" / "id" / "default" / f"seed{s}" for s in (1, 2)]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not all(holder_pid(f) for f in folders):
        time.sleep(0.5)
    workers = [holder_pid(f) for f in folders]
    assert all(workers), "the cells did not start"
    grid.send_signal(signal.SIGKILL)
    grid.wait()

    def alive(pid):
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True

    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and any(alive(p) for p in workers):
        time.sleep(0.5)
    assert not any(alive(p) for p in workers)
