"""Exclusive locks on folders (a run folder, a shared artifact folder) for as long as a process works in them.

The lock is ``fcntl.flock`` on ``<folder>/.lock``: the kernel drops it when its holder exits, however
it ends (``kill -9`` too), so the lock of a dead process never blocks anyone and the next process takes
it over. The holder writes its pid into the file, so a process that finds the folder taken can say
by whom. Kept by hand (a few lines over fcntl, as the experiment and artifact locks are): ``filelock``
is no declared dependency, and its 3.x releases truncate the lock file on every attempt, which would
erase the holder's pid.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import threading
from pathlib import Path

from lucidrec.errors import LucidrecError

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"

_held: dict[tuple[int, Path], int] = {}  # (pid, folder) -> nesting depth: a process may re-enter its own lock
_guard = threading.Lock()


class FolderInUseError(LucidrecError):
    """Another process holds the folder."""

    def __init__(self, folder: Path, holder: int | None):
        self.folder, self.holder = folder, holder
        who = f"pid {holder}" if holder else "a process that has not written its pid yet"
        super().__init__(f"{folder} is in use by another process ({who}); wait for it to end or stop it, "
                         "or choose another folder")


def holder_pid(folder: Path) -> int | None:
    """The pid written by the process that holds (or last held) ``folder``'s lock, if any."""
    try:
        return int((Path(folder) / LOCK_FILE).read_text().strip() or 0) or None
    except (OSError, ValueError):
        return None


@contextlib.contextmanager
def hold(folder: Path, *, wait: bool = False):
    """Hold ``folder`` (created if missing) exclusively. Taken by another process: raise
    :class:`FolderInUseError` naming its pid, or with ``wait=True`` block until it lets go."""
    folder = Path(folder).resolve()
    key = (os.getpid(), folder)
    with _guard:
        if key in _held:
            _held[key] += 1
            nested = True
        else:
            nested = False
    if nested:
        try:
            yield folder
        finally:
            with _guard:
                _held[key] -= 1
        return
    folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(folder / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if not wait:
                raise FolderInUseError(folder, holder_pid(folder)) from None
            log.warning("waiting for pid %s, which is using %s", holder_pid(folder), folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n".encode(), 0)
        with _guard:
            _held[key] = 1
        try:
            yield folder
        finally:
            with _guard:
                del _held[key]
            os.ftruncate(fd, 0)  # released: no pid left to name
    finally:
        os.close(fd)  # closing the descriptor releases the lock
