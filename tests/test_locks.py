"""One folder lock for run folders, grid results folders and artifacts (lucidrec.locks)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from lucidrec.experiments.runner import ResultsLockedError
from lucidrec.locks import FolderInUseError, hold, holder_pid
from lucidrec.methods import artifacts


def _hold_in_child(folder, holder: str):
    script = ("import sys, time; from lucidrec.locks import hold\n"
              "with hold(sys.argv[1], holder=sys.argv[2]):\n    print('held', flush=True); sys.stdin.read()\n")
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}
    child = subprocess.Popen([sys.executable, "-c", script, str(folder), holder], stdin=subprocess.PIPE,
                             stdout=subprocess.PIPE, text=True, env=env)
    assert child.stdout.readline().strip() == "held"
    return child


def test_a_grid_holding_a_results_folder_is_named_with_its_pid(tmp_path):
    child = _hold_in_child(tmp_path / "results", "grid nightly (grids/nightly.toml)")
    try:
        assert holder_pid(tmp_path / "results") == child.pid  # the same record for every kind of lock
        with pytest.raises(ResultsLockedError) as caught:
            with hold(tmp_path / "results", reentrant=False, error=ResultsLockedError):
                pass
        message = str(caught.value)
        assert str((tmp_path / "results").resolve()) in message
        assert f"being written by another grid (grid nightly (grids/nightly.toml), pid {child.pid}); wait" in message
        assert isinstance(caught.value, FolderInUseError) and caught.value.holder == child.pid
    finally:
        child.communicate("")
    assert holder_pid(tmp_path / "results") is None  # released: nobody to name


def test_a_lock_that_is_not_reentrant_refuses_this_process_too(tmp_path):
    with hold(tmp_path / "run", holder="first"):
        with hold(tmp_path / "run"):  # a run folder: nested use by its holder is fine
            pass
        with pytest.raises(FolderInUseError, match=rf"in use by another process \(first, pid {os.getpid()}"):
            with hold(tmp_path / "run", reentrant=False):
                pass
    with hold(tmp_path / "run", reentrant=False):  # free again
        pass


def test_a_holder_on_another_machine_is_named_with_its_host(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / ".lock").write_text("4242\nother-node\ngrid x\n")  # as a holder there wrote it
    with open(tmp_path / "run" / ".lock") as handle:
        import fcntl

        fcntl.flock(handle, fcntl.LOCK_EX)  # held (by this test, through another descriptor)
        with pytest.raises(FolderInUseError, match=r"\(grid x, pid 4242 on other-node\)"):
            with hold(tmp_path / "run"):
                pass


def test_an_artifact_lock_sits_next_to_the_folder_and_names_its_builder(tmp_path):
    folder = tmp_path / "scft" / "abc123"
    with artifacts.locked(folder):
        assert not folder.exists()  # the artifact folder holds nothing but its content
        assert holder_pid(tmp_path / "scft", "abc123.lock") == os.getpid()
        assert "building scft abc123" in (tmp_path / "scft" / "abc123.lock").read_text()
