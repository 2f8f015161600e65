"""Files that survive a killed process: every write goes to a temporary name and is then renamed.

``os.replace`` is atomic on one file system, so a reader sees the old file or the new one, never a
truncated one; this matters because the presence of a file marks work as done (``metrics.json``
a finished run, ``provenance.json`` a complete artifact). Reads name the file and the line when
the content is damaged (written by hand, or by another tool).
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from lucidrec.errors import DataFormatError

log = logging.getLogger(__name__)


def _write_atomic(path: Path, write: Callable[[BinaryIO], None]) -> Path:
    """Call ``write`` with a handle to a temporary file next to ``path``, then rename it to ``path``.

    The temporary name is unique per call (process id and a random part), so two processes writing
    the same file (ranks of a torchrun job, two runs sharing a cache) never remove or mix each other's
    temporary files; the last rename wins, and readers always see one whole file. Temporaries of this
    name that killed processes left behind are removed once the new file is in place.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = _sibling(path, "tmp")
    try:
        with open(tmp, "wb") as handle:
            write(handle)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)
    _remove_leftovers(path)
    return path


def write_json_atomic(path: Path, payload, default: Callable = str) -> Path:
    """``payload`` as indented JSON; values JSON cannot hold go through ``default``."""
    data = (json.dumps(payload, indent=2, default=default) + "\n").encode()  # serialise first: a failure leaves no file
    return _write_atomic(path, lambda handle: handle.write(data))


def write_text_atomic(path: Path, text: str) -> Path:
    """``text`` as UTF-8, written under a temporary name and renamed."""
    data = text.encode("utf-8")
    return _write_atomic(path, lambda handle: handle.write(data))


def numpy_default(value):
    """A ``default`` for :func:`write_json_atomic` that keeps numpy numbers and arrays as numbers."""
    import numpy as np

    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, np.floating):
        return float(value)
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def atomic_torch_save(payload, path: Path) -> Path:
    import torch

    return _write_atomic(path, lambda handle: torch.save(payload, handle))


def atomic_numpy_save(array, path: Path) -> Path:
    import numpy as np

    # Through a handle, so numpy appends no ".npy" to the temporary name.
    return _write_atomic(path, lambda handle: np.save(handle, array))


def atomic_savez_compressed(path: Path, **arrays) -> Path:
    import numpy as np

    return _write_atomic(path, lambda handle: np.savez_compressed(handle, **arrays))


def _sibling(path: Path, tag: str) -> Path:
    """A hidden name next to ``path``, unique per call (process id and a random part)."""
    return path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.{tag}")


def _remove_leftovers(target: Path) -> None:
    """Delete the temporary files, staging and set-aside folders that killed calls left next to
    ``target``: only names exactly of :func:`_sibling`'s form for this target, of processes that no
    longer run (a live one may be writing its own). Called once ``target`` is in place, so a
    set-aside folder is never the only copy of it."""
    own = re.compile(rf"\.{re.escape(target.name)}\.(\d+)\.[0-9a-f]{{8}}\.(tmp|old)")
    for path in target.parent.iterdir():
        match = own.fullmatch(path.name)
        if match and not _process_alive(int(match.group(1))):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def replace_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh staging folder with ``write`` and move it to ``target`` (replacing an old one).

    The old folder is renamed aside first and deleted only after the new one is in place, so the
    window without a ``target`` is two renames, not the deletion of a model folder.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging, old = _sibling(target, "tmp"), _sibling(target, "old")
    staging.mkdir()  # mode from the umask (tempfile.mkdtemp would make it private, 0700)
    try:
        write(staging)
        if target.exists():
            os.replace(target, old)
        os.replace(staging, target)
        _remove_leftovers(target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
        shutil.rmtree(old, ignore_errors=True)


def trim_log(path: Path, field: str, before: int) -> None:
    """Keep the JSON-lines records of a log whose ``field`` is below ``before``: on resume, the lines a
    killed process wrote after its last checkpoint are forgotten (they are recomputed identically).
    Lines that are not such a record (a write cut off by a kill) are dropped with a warning naming
    them: a log is a record of the run, and a damaged line must not stop the run from resuming."""
    path = Path(path)
    if not path.is_file():
        return
    kept = []
    for number, line in enumerate(path.read_text().splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            keep = record[field] < before
        except (json.JSONDecodeError, TypeError, KeyError):
            log.warning("%s, line %d: not a log record with '%s'; dropped", path, number, field)
            continue
        if keep:
            kept.append(line)
    data = "".join(line + "\n" for line in kept).encode()
    _write_atomic(path, lambda handle: handle.write(data))


def read_json(path: Path):
    """The parsed content; a damaged file is a DataFormatError naming it and the line.

    A missing file raises FileNotFoundError, so callers can tell "not there yet" from "broken".
    """
    path = Path(path)
    try:
        return json.loads(path.read_text())
    except UnicodeDecodeError as exc:
        raise DataFormatError(path, f"not UTF-8 text (byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise DataFormatError(path, f"not valid JSON (column {exc.colno}: {exc.msg})", line=exc.lineno) from None


def read_jsonl(path: Path) -> Iterator[tuple[int, object]]:
    """``(line number, parsed value)`` for each non-blank line; a line that is not JSON is a
    DataFormatError naming the file and the line."""
    path = Path(path)
    with open(path, encoding="utf-8") as handle:
        for line_no, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                yield line_no, json.loads(line)
            except json.JSONDecodeError as exc:
                raise DataFormatError(path, f"not valid JSON: {exc.msg}", line=line_no) from None
