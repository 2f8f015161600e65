"""Exclusive locks on folders (a run folder, a grid's results folder, an artifact being built) for as long
as a process works in them.

The lock is ``fcntl.flock`` on a lock file (``<folder>/.lock`` by default): the kernel drops it when its
holder exits, however it ends (``kill -9`` too), so the lock of a dead process never blocks anyone and
the next process takes it over. The holder writes its pid (and, when given, what it is) into the file, so
a process that finds the folder taken can say by whom.

Our own few lines over fcntl rather than ``filelock``: the holder's pid must stay readable in the lock file
while it is held, and ``filelock`` changes what it does to that file between major versions (3.x truncates
it on every attempt).
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import socket
import threading
from pathlib import Path

from lucidrec.errors import LucidrecError

log = logging.getLogger(__name__)
LOCK_FILE = ".lock"

_held: dict[tuple[int, Path], int] = {}  # (pid, lock file) -> nesting depth: a process may re-enter its own lock
_guard = threading.Lock()


class FolderInUseError(LucidrecError):
    """Another process (or, for a lock that is not re-entrant, another part of this one) holds the folder.

    Subclasses word the message for their caller by overriding :meth:`describe`."""

    def __init__(self, folder: Path, holder: int | None, holder_text: str | None = None):
        self.folder, self.holder = folder, holder
        self.holder_text = holder_text or (f"pid {holder}" if holder else "a process that has not written its pid yet")
        super().__init__(self.describe())

    def describe(self) -> str:
        return (f"{self.folder} is in use by another process ({self.holder_text}); wait for it to end or stop it, "
                "or choose another folder")


def _read(lock_file: Path) -> tuple[int | None, str | None]:
    """``(pid, "HOLDER, pid PID")`` from the lines the holder wrote: pid, host, holder (may be empty); `` on HOST``
    follows the pid when the holder runs on another machine (a folder on a shared file system)."""
    try:
        pid_line, host, label = (lock_file.read_text().split("\n") + ["", ""])[:3]
        pid = int(pid_line.strip() or 0) or None
    except (OSError, ValueError):
        return None, None
    if pid is None:
        return None, None
    where = f" on {host.strip()}" if host.strip() not in ("", socket.gethostname()) else ""
    return pid, f"{label.strip() + ', ' if label.strip() else ''}pid {pid}{where}"


def holder_pid(folder: Path, lock_file: str = LOCK_FILE) -> int | None:
    """The pid written by the process that holds (or last held) ``folder``'s lock, if any."""
    return _read(Path(folder) / lock_file)[0]


@contextlib.contextmanager
def hold(folder: Path, *, wait: bool = False, holder: str | None = None, reentrant: bool = True,
         error: type[FolderInUseError] = FolderInUseError, lock_file: Path | None = None):
    """Hold ``folder`` (created if missing) exclusively.

    Taken by another process: raise ``error`` naming the holder, or with ``wait=True`` block until it lets
    go. ``holder`` says what holds it (written next to the pid, shown in the other process's error).
    ``reentrant``: this process may take its own lock again (nested ``hold`` of a run folder); when False,
    a second ``hold`` in the same process is refused like one from another process. ``lock_file``: lock
    this file instead of ``<folder>/.lock`` (for a folder that must hold nothing but its content)."""
    folder = Path(folder).resolve()
    path = Path(lock_file).resolve() if lock_file is not None else folder / LOCK_FILE
    key = (os.getpid(), path)
    with _guard:
        nested = reentrant and key in _held
        if nested:
            _held[key] += 1
    if nested:
        try:
            yield folder
        finally:
            with _guard:
                _held[key] -= 1
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    if lock_file is None:
        folder.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            pid, text = _read(path)
            if not wait:
                raise error(folder, pid, text) from None
            log.warning("waiting for %s, which is using %s", text or "another process", folder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        os.ftruncate(fd, 0)
        os.pwrite(fd, f"{os.getpid()}\n{socket.gethostname()}\n{(holder or '').replace(chr(10), ' ')}\n".encode(), 0)
        with _guard:
            _held[key] = 1
        try:
            yield folder
        finally:
            with _guard:
                del _held[key]
            os.ftruncate(fd, 0)  # released: no holder left to name
    finally:
        os.close(fd)  # closing the descriptor releases the lock
