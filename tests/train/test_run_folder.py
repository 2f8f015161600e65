"""What a run folder promises: a refused --resume changes nothing, a run can be extended (epochs,
patience) with the change recorded, and one process at a time writes it."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
from typer.testing import CliRunner

from lucidrec.cli import app
from lucidrec.config import ConfigError
from lucidrec.train.checkpoint import CheckpointError
from lucidrec.train.run import build_config, evaluate_run, train_or_reuse, train_run
from tests.synthetic import write_cyclic

runner = CliRunner()
PROVENANCE = ("config.json", "data.json", "metrics.json", "last.pt", "best.pt", "log.jsonl")


@pytest.fixture
def cyclic_dir(tmp_path):
    write_cyclic(tmp_path / "data")
    return tmp_path / "data"


def _config(data_dir, epochs=2, **train):
    return build_config({
        "data": {"dataset": "cyclic", "data_dir": str(data_dir)},
        "model": {"name": "sasrec", "hidden": 16, "max_len": 10},
        "train": {"epochs": epochs, "batch_size": 32, "progress": False, "patience": 50, "lr": 0.01, **train},
    })


def _snapshot(run):
    return {name: (run / name).read_bytes() for name in PROVENANCE if (run / name).is_file()}


def test_a_refused_resume_leaves_the_run_folder_as_it_was(cyclic_dir, tmp_path):
    run = tmp_path / "run"
    train_run(_config(cyclic_dir), run)
    before = _snapshot(run)
    with pytest.raises(CheckpointError, match=r"train.lr: 0.01 -> 0.5"):
        train_run(_config(cyclic_dir, lr=0.5), run, resume=True)
    assert _snapshot(run) == before
    write_cyclic(cyclic_dir, n_users=100)  # the data changes under the run
    with pytest.raises(CheckpointError, match="data changed"):
        train_run(_config(cyclic_dir), run, resume=True)
    assert _snapshot(run) == before
    # data.json still names the data the model was trained on, so re-evaluating on other data is refused.
    with pytest.raises(CheckpointError, match="data changed since this run was trained"):
        evaluate_run(run)
    assert _snapshot(run) == before


def test_a_run_is_extended_with_more_epochs_exactly_as_if_it_had_asked_for_them(cyclic_dir, tmp_path):
    straight = train_run(_config(cyclic_dir, epochs=4), tmp_path / "straight")
    run = tmp_path / "run"
    train_run(_config(cyclic_dir, epochs=2), run)
    settings = ["train.epochs=4", "train.batch_size=32", "train.progress=false", "train.patience=50", "train.lr=0.01",
                "model.hidden=16", "model.max_len=10"]
    result = runner.invoke(app, ["train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--out", str(run),
                                 "--resume", *[part for setting in settings for part in ("--set", setting)]])
    assert result.exit_code == 0, result.output
    extended = json.loads((run / "metrics.json").read_text())
    keys = [k for k in straight if k.startswith("test/")]
    assert keys and all(extended[k] == straight[k] for k in keys) and extended["epochs_run"] == 4
    assert json.loads((run / "config.json").read_text())["train"]["epochs"] == 4
    history = [json.loads(line) for line in (run / "config_history.jsonl").read_text().splitlines()]
    assert len(history) == 1 and history[0]["changed"] == {"train.epochs": {"from": 2, "to": 4}}
    assert history[0]["epochs_done"] == 2


def test_patience_may_be_raised_and_epochs_not_cut_below_what_ran(cyclic_dir, tmp_path):
    run = tmp_path / "run"
    train_run(_config(cyclic_dir, epochs=4), run, stop_after_epochs=2)
    before = _snapshot(run)
    with pytest.raises(CheckpointError, match=r"train.patience: 50 -> 40 .*only be raised"):
        train_run(_config(cyclic_dir, epochs=4, patience=40), run, resume=True)
    with pytest.raises(CheckpointError, match=r"train.epochs: 4 -> 1 .*2 epochs already run"):
        train_run(_config(cyclic_dir, epochs=1), run, resume=True)
    assert _snapshot(run) == before and not (run / "config_history.jsonl").exists()
    assert train_run(_config(cyclic_dir, epochs=3, patience=60), run, resume=True)["status"] == "done"
    assert json.loads((run / "metrics.json").read_text())["epochs_run"] == 3
    history = [json.loads(line)["changed"] for line in (run / "config_history.jsonl").read_text().splitlines()]
    assert history == [{"train.epochs": {"from": 4, "to": 3}, "train.patience": {"from": 50, "to": 60}}]


def test_a_finished_run_given_more_epochs_is_extended_not_refused(cyclic_dir, tmp_path):
    run = tmp_path / "run"
    train_or_reuse(_config(cyclic_dir, epochs=2), run)
    assert train_or_reuse(_config(cyclic_dir, epochs=3), run)["epochs_run"] == 3
    with pytest.raises(ConfigError, match="another config"):
        train_or_reuse(_config(cyclic_dir, epochs=4, lr=0.02), run)


HOLDER = """
import sys, time
from pathlib import Path
import lucidrec.train.run as run_module
from lucidrec.train.run import build_config, train_run

real = run_module.build_model

def slow_build(*args, **kwargs):
    print("started", flush=True)
    time.sleep(120)  # holds the folder until killed
    return real(*args, **kwargs)

run_module.build_model = slow_build
config = build_config({"data": {"dataset": "cyclic", "data_dir": sys.argv[1]},
                       "model": {"name": "sasrec", "hidden": 16, "max_len": 10},
                       "train": {"epochs": 1, "batch_size": 32, "progress": False}})
train_run(config, Path(sys.argv[2]))
"""


def test_a_second_process_on_one_run_folder_is_refused_naming_the_holder_until_it_dies(cyclic_dir, tmp_path):
    run = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(cyclic_dir), str(run)], stdout=subprocess.PIPE,
                              text=True, env=env)
    try:
        assert holder.stdout.readline().strip() == "started"
        args = ["train", "--dataset", "cyclic", "--data-dir", str(cyclic_dir), "--out", str(run)]
        for setting in ("train.epochs=1", "train.progress=false", "model.hidden=16", "model.max_len=10"):
            args += ["--set", setting]
        second = runner.invoke(app, args)
        assert second.exit_code == 2
        assert f"in use by another process (pid {holder.pid})" in second.output and str(run) in second.output
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    # The holder was killed: its lock went with it, and the next process takes the folder over.
    taken_over = runner.invoke(app, args)
    assert taken_over.exit_code == 0, taken_over.output
    assert (run / "metrics.json").is_file()


def test_a_shared_folder_can_be_waited_for(tmp_path):
    from lucidrec.locks import FolderInUseError, hold

    script = ("import sys, time; from lucidrec.locks import hold\n"
              "with hold(sys.argv[1]):\n    print('held', flush=True); time.sleep(1.5)\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    holder = subprocess.Popen([sys.executable, "-c", script, str(tmp_path / "shared")], stdout=subprocess.PIPE,
                              text=True, env=env)
    assert holder.stdout.readline().strip() == "held"
    with pytest.raises(FolderInUseError, match=f"pid {holder.pid}"):
        with hold(tmp_path / "shared"):
            pass
    started = time.perf_counter()
    with hold(tmp_path / "shared", wait=True):
        assert time.perf_counter() - started > 0.5  # it waited for the holder to let go
        with hold(tmp_path / "shared"):  # held by this process already: nested use is fine
            pass
    holder.wait()


def test_the_data_folder_and_eval_batch_sizes_may_change_on_resume(cyclic_dir, tmp_path):
    import shutil

    run = tmp_path / "run"
    train_run(_config(cyclic_dir, epochs=3), run, stop_after_epochs=1)
    moved = shutil.copytree(cyclic_dir, tmp_path / "moved")  # the same files elsewhere: the data hash still holds
    config = build_config({**_config(moved, epochs=3).model_dump(mode="json"),
                           "eval": {"batch_size": 7, "item_chunk": 5}})
    assert train_run(config, run, resume=True)["status"] == "done"
    changed = json.loads((run / "config_history.jsonl").read_text())["changed"]
    assert sorted(changed) == ["data.data_dir", "eval.batch_size", "eval.item_chunk"]
    log = (run / "log.jsonl").read_text()
    assert train_or_reuse(build_config({**config.model_dump(mode="json"), "eval": {}}), run)["status"] == "done"
    assert (run / "log.jsonl").read_text() == log  # other eval batch sizes: reused as it is
    assert len((run / "config_history.jsonl").read_text().splitlines()) == 1
    write_cyclic(tmp_path / "other", n_users=100)  # another folder with other files under the same name
    with pytest.raises(CheckpointError, match="data changed"):
        train_or_reuse(_config(tmp_path / "other", epochs=3), run)
