"""Atomic writes and named read errors (lucidrec.files): a killed write never leaves a file that
looks complete, because the presence of metrics.json or provenance.json marks work as done."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from lucidrec import files
from lucidrec.errors import DataFormatError


def test_json_round_trip_and_default(tmp_path):
    path = files.write_json_atomic(tmp_path / "sub" / "a.json", {"x": 1, "p": tmp_path})
    assert files.read_json(path) == {"x": 1, "p": str(tmp_path)}
    assert sorted(p.name for p in path.parent.iterdir()) == ["a.json"]


def test_failed_serialisation_keeps_the_old_file(tmp_path):
    path = files.write_json_atomic(tmp_path / "metrics.json", {"old": 1})

    def refuse(value):
        raise TypeError("not serialisable")

    with pytest.raises(TypeError):
        files.write_json_atomic(path, {"new": object()}, default=refuse)
    assert files.read_json(path) == {"old": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


@pytest.mark.parametrize("write", [
    lambda path: files.write_json_atomic(path, {"new": 2}),
    lambda path: files.atomic_numpy_save(np.arange(3), path),
    lambda path: files.atomic_savez_compressed(path, a=np.arange(3)),
    lambda path: files.atomic_torch_save({"new": 2}, path),
])
def test_a_write_killed_before_the_rename_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch, write):
    path = tmp_path / "target"
    path.write_text("old")

    def killed(src, dst):
        raise KeyboardInterrupt  # what a SIGINT between the write and the rename raises

    monkeypatch.setattr(os, "replace", killed)
    with pytest.raises(KeyboardInterrupt):
        write(path)
    assert path.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["target"]


def test_numpy_writers_keep_the_exact_name(tmp_path):
    files.atomic_numpy_save(np.arange(4), tmp_path / "table.npy")
    files.atomic_savez_compressed(tmp_path / "ranks.npz", users=np.arange(2))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["ranks.npz", "table.npy"]
    assert np.load(tmp_path / "table.npy").tolist() == [0, 1, 2, 3]
    with np.load(tmp_path / "ranks.npz") as arrays:
        assert arrays["users"].tolist() == [0, 1]


def test_damaged_json_names_the_file_and_line(tmp_path):
    path = tmp_path / "metrics.json"
    path.write_text('{\n  "test/full/ndcg@10": 0.1,\n  "test/full/mrr": ')
    with pytest.raises(DataFormatError, match=r"metrics.json, line 3: not valid JSON"):
        files.read_json(path)
    path.write_bytes(b'{"a": "\xff"}')
    with pytest.raises(DataFormatError, match=r"metrics.json: not UTF-8 text \(byte 7\)"):
        files.read_json(path)


def test_missing_file_is_not_a_format_error(tmp_path):
    with pytest.raises(FileNotFoundError):
        files.read_json(tmp_path / "absent.json")


def test_trim_log_keeps_earlier_records_and_drops_a_cut_last_line(tmp_path):
    path = tmp_path / "log.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1}\n{"epoch": 2}\n{"epoch": 3, "lo')
    files.trim_log(path, "epoch", 2)
    assert path.read_text() == '{"epoch": 0}\n{"epoch": 1}\n'
    files.trim_log(tmp_path / "absent.jsonl", "epoch", 2)  # nothing logged yet: nothing to do
    assert not (tmp_path / "absent.jsonl").exists()


def test_trim_log_drops_damaged_lines_with_a_warning_naming_them(tmp_path, caplog):
    # Two records glued on one line: a kill mid-write, then the resumed epoch appended after it.
    path = tmp_path / "log.jsonl"
    path.write_text('{"epoch": 0}\n{"epoch": 1, "lo{"epoch": 1}\n[1, 2]\n{"epoch": 2}\n')
    with caplog.at_level("WARNING"):
        files.trim_log(path, "epoch", 5)
    assert path.read_text() == '{"epoch": 0}\n{"epoch": 2}\n'
    assert "log.jsonl, line 2" in caplog.text and "log.jsonl, line 3" in caplog.text


def _hammer(path: str, value: int) -> None:
    for _ in range(150):
        files.atomic_savez_compressed(Path(path), a=np.full(64, value))


def test_two_processes_writing_one_file_never_collide(tmp_path):
    # Ranks of a torchrun job write the same run-folder files; each write must stay whole and never
    # lose its temporary file to the other process.
    import multiprocessing

    path = tmp_path / "state.npz"
    context = multiprocessing.get_context("spawn")
    workers = [context.Process(target=_hammer, args=(str(path), value)) for value in (1, 2)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=120)
    assert [worker.exitcode for worker in workers] == [0, 0]
    with np.load(path) as arrays:
        assert len(set(arrays["a"].tolist())) == 1  # one writer's whole array, not a mix
    assert [p.name for p in tmp_path.iterdir()] == ["state.npz"]


def test_replace_dir_swaps_the_whole_folder_keeps_the_old_one_on_failure_and_leaves_nothing_behind(tmp_path):
    import stat

    from lucidrec.files import replace_dir

    target = tmp_path / "model"
    replace_dir(target, lambda d: (d / "a.txt").write_text("one"))
    replace_dir(target, lambda d: (d / "b.txt").write_text("two"))
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]  # the old content is gone, not merged

    def broken(d):
        (d / "c.txt").write_text("partial")
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        replace_dir(target, broken)
    assert sorted(p.name for p in target.iterdir()) == ["b.txt"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no staging or old folder left
    umask = os.umask(0)
    os.umask(umask)
    assert stat.S_IMODE(target.stat().st_mode) == 0o777 & ~umask  # as mkdir would make it (mkdtemp: 0700)


def test_replace_dir_removes_what_killed_calls_left_but_not_a_running_one(tmp_path):
    import subprocess
    import sys

    from lucidrec.files import replace_dir

    ended = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    dead = int(ended.stdout)  # a process id that no longer runs
    target = tmp_path / "model"
    for name in (f".model.{dead}.ab12cd34.tmp", f".model.{dead}.ef56ab78.old", f".model.{os.getpid()}.00000000.tmp",
                 f".model.2.{dead}.ab12cd34.tmp"):  # the last: the staging folder of another target, "model.2"
        (tmp_path / name).mkdir()
        (tmp_path / name / "weights.bin").write_text("x")
    replace_dir(target, lambda d: (d / "a.txt").write_text("one"))
    # This process is alive (its folder may be in use); another target's leftovers are not ours to judge.
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        [f".model.{os.getpid()}.00000000.tmp", f".model.2.{dead}.ab12cd34.tmp", "model"])

    # Killed between its two renames: the set-aside folder is the only copy, and a failing write keeps it.
    os.rename(target, tmp_path / f".model.{dead}.0badc0de.old")

    def broken(d):
        raise RuntimeError("killed while writing")

    with pytest.raises(RuntimeError):
        replace_dir(target, broken)
    assert (tmp_path / f".model.{dead}.0badc0de.old" / "a.txt").read_text() == "one"


KILLED_DURING_A_WRITE = """
import os, signal, sys
from pathlib import Path
from lucidrec import files

def write(handle):
    handle.write(b"half a checkpoint")
    handle.flush()
    os.kill(os.getpid(), signal.SIGKILL)

files._write_atomic(Path(sys.argv[1]), write)
"""


def test_the_next_write_removes_temporaries_that_a_killed_write_left(tmp_path):
    import subprocess
    import sys

    path = tmp_path / "last.pt"
    files.atomic_torch_save({"epoch": 1}, path)
    for _ in range(2):
        killed = subprocess.run([sys.executable, "-c", KILLED_DURING_A_WRITE, str(path)])
        assert killed.returncode == -9
    left = [p.name for p in tmp_path.iterdir() if p.name.startswith(".last.pt.")]
    assert len(left) == 2
    alive = tmp_path / f".last.pt.{os.getpid()}.00000000.tmp"  # a live process may be writing this one
    alive.write_bytes(b"in progress")
    other = tmp_path / f".best.pt.{left[0].split('.')[3]}.00000000.tmp"  # another file's: not this write's business
    other.write_bytes(b"x")
    files.atomic_torch_save({"epoch": 2}, path)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["last.pt", alive.name, other.name])
