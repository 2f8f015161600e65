"""One grid at a time per results folder: an advisory file lock (``fcntl.flock``), released by the
operating system when the holder exits or is killed, so a crash never leaves a stale lock behind."""

from __future__ import annotations

import fcntl
import os
import socket
from contextlib import contextmanager
from pathlib import Path

from lucidrec.errors import LucidrecError

LOCK_FILE = ".lock"


class ResultsLockedError(LucidrecError, RuntimeError):
    pass


@contextmanager
def results_lock(folder: Path, holder: str):
    """Hold the lock of ``folder`` (created if missing) for the ``with`` block, or fail at once naming the holder."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    handle = open(folder / LOCK_FILE, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            other = handle.read().strip() or "another process"
            raise ResultsLockedError(f"{folder} is being written by another grid ({other}); wait for it to finish "
                                     "or give this grid another results folder (--results DIR)") from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"{holder}, pid {os.getpid()} on {socket.gethostname()}\n")
        handle.flush()
        yield
    finally:
        handle.close()  # closing the descriptor releases the lock
