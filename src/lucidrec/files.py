"""Files that survive a killed process: every write goes to a temporary name and is then renamed.

``os.replace`` is atomic on one file system, so a reader sees the old file or the new one, never a
truncated one; this matters because the presence of a file marks work as done (``metrics.json``
a finished run, ``provenance.json`` a complete artifact). Reads name the file and the line when
the content is damaged (written by hand, or by another tool).
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Callable

from lucidrec.errors import DataFormatError


def _temporary(path: Path, suffix: str = ".tmp") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(path.name + suffix)


def _replace(tmp: Path, path: Path, write: Callable[[Path], None]) -> None:
    try:
        write(tmp)
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def write_json_atomic(path: Path, payload, default: Callable = str) -> Path:
    """``payload`` as indented JSON; values JSON cannot hold go through ``default``."""
    path = Path(path)
    text = json.dumps(payload, indent=2, default=default) + "\n"  # serialise first: a failure leaves no file
    _replace(_temporary(path), path, lambda tmp: tmp.write_text(text))
    return path


def atomic_torch_save(payload, path: Path) -> Path:
    import torch

    path = Path(path)
    _replace(_temporary(path), path, lambda tmp: torch.save(payload, tmp))
    return path


def atomic_numpy_save(array, path: Path) -> Path:
    import numpy as np

    path = Path(path)
    # np.save appends ".npy" to a name without it, hence the suffix.
    _replace(_temporary(path, ".tmp.npy"), path, lambda tmp: np.save(tmp, array))
    return path


def atomic_savez_compressed(path: Path, **arrays) -> Path:
    import numpy as np

    path = Path(path)
    # A file handle, not a name: np.savez would append ".npz" to the temporary name.
    _replace(_temporary(path), path, lambda tmp: _savez(np, tmp, arrays))
    return path


def _savez(np, tmp: Path, arrays: dict) -> None:
    with open(tmp, "wb") as handle:
        np.savez_compressed(handle, **arrays)


def replace_dir(target: Path, write: Callable[[Path], None]) -> None:
    """Fill a fresh staging folder with ``write`` and move it to ``target`` (replacing an old one)."""
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=target.name + ".", dir=target.parent))
    try:
        write(staging)
        if target.exists():
            shutil.rmtree(target)
        os.replace(staging, target)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def trim_log(path: Path, field: str, before: int) -> None:
    """Keep the JSON-lines records of a log whose ``field`` is below ``before``: on resume, the lines a
    killed process wrote after its last checkpoint are forgotten (they are recomputed identically),
    and so is a last line cut off mid-write. A damaged line elsewhere is an error naming it."""
    path = Path(path)
    if not path.is_file():
        return
    lines = [line for line in path.read_text().splitlines() if line.strip()]
    kept = []
    for number, line in enumerate(lines, start=1):
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            if number == len(lines):
                break
            raise DataFormatError(path, f"not a JSON record ({exc.msg})", line=number) from None
        if record[field] < before:
            kept.append(line)
    text = "".join(line + "\n" for line in kept)
    _replace(_temporary(path), path, lambda tmp: tmp.write_text(text))


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
