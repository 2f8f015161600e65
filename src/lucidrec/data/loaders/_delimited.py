"""Strict reading of delimited text files: every problem is reported with file, line and field."""

from __future__ import annotations

import csv
import io
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from lucidrec.errors import DataFormatError


@dataclass
class BadLines:
    """Lines skipped when a loader runs with ``on_bad_lines="skip"``: kept so nothing vanishes silently."""

    path: str
    lines: list[int] = field(default_factory=list)
    reasons: list[str] = field(default_factory=list)

    def add(self, line: int, reason: str) -> None:
        self.lines.append(line)
        self.reasons.append(reason)

    def summary(self) -> str:
        shown = ", ".join(f"line {n} ({r})" for n, r in zip(self.lines[:3], self.reasons[:3]))
        more = f" and {len(self.lines) - 3} more" if len(self.lines) > 3 else ""
        return f"{self.path}: skipped {len(self.lines)} malformed line(s): {shown}{more}"


def read_delimited(
    path: Path,
    columns: list[str],
    sep: str,
    numeric: dict[str, str],
    header: bool = False,
    encoding: str = "utf-8",
    on_bad_lines: str = "raise",
    quoting: bool = False,
) -> tuple[pd.DataFrame, BadLines]:
    """Read ``path`` into string columns, then check the ``numeric`` ones (name -> 'int'|'float').

    ``sep`` may be multi-character (MovieLens-1M's '::'); it is mapped to a single control character
    first so the fast C parser can be used. Line numbers in errors are 1-based file lines.
    """
    bad = BadLines(str(path))
    try:
        raw = path.read_bytes().decode(encoding)
    except UnicodeDecodeError as exc:
        line = raw_line_of_offset(path.read_bytes(), exc.start)
        raise DataFormatError(path, f"not valid {encoding} text ({exc.reason})", line=line) from exc
    if len(sep) > 1:
        raw = raw.replace(sep, "\x1f")
        sep = "\x1f"
    lines = raw.splitlines()
    first_data_line = 2 if header else 1
    if header:
        got = _split(lines[0], sep, quoting) if lines else []
        if got[: len(columns)] != columns and len(got) >= 1:
            missing = [c for c in columns if c not in got]
            if missing:
                raise DataFormatError(path, f"missing column (header is: {', '.join(got)})", line=1, field=missing[0])
        header_cols = got
        lines = lines[1:]
    else:
        header_cols = columns
    n_fields = len(header_cols)
    # Field counts are checked first (the C parser would silently pad short rows). Quoted formats
    # may hold the separator inside a field, so there the csv module counts the fields.
    if quoting:
        counts = np.array([len(row) for row in csv.reader(lines, delimiter=sep)], dtype=np.int64)
        if len(counts) != len(lines):  # a quoted field spanning lines: rows and lines disagree, the parser checks
            counts = np.full(len(lines), n_fields)
    else:
        counts = np.fromiter((line.count(sep) + 1 for line in lines), dtype=np.int64, count=len(lines))
    wrong = counts != n_fields
    for offset in np.flatnonzero(wrong):
        found = int(counts[offset])
        reason = f"expected {n_fields} fields, found {found}"
        if on_bad_lines == "raise":
            raise DataFormatError(path, f"{reason}: {lines[offset][:120]!r}", line=int(offset) + first_data_line)
        bad.add(int(offset) + first_data_line, reason)
    keep = np.flatnonzero(~wrong)
    text = "\n".join(lines[i] for i in keep) if wrong.any() else "\n".join(lines)
    try:
        frame = pd.read_csv(
            io.StringIO(text), sep=sep, header=None, names=header_cols, dtype=str, keep_default_na=False,
            skip_blank_lines=False, quoting=0 if quoting else 3, engine="c",
        )
    except pd.errors.ParserError as exc:
        match = re.search(r"line (\d+)", str(exc))
        line = int(keep[int(match.group(1)) - 1]) + first_data_line if match else None
        raise DataFormatError(path, f"cannot parse: {exc}", line=line) from exc
    file_lines = keep + first_data_line
    frame = frame[columns] if header else frame
    drop = np.zeros(len(frame), dtype=bool)
    for name, kind in numeric.items():
        values = pd.to_numeric(frame[name].str.strip(), errors="coerce")
        invalid = values.isna().to_numpy().copy()
        if kind == "int":
            filled = values.fillna(0).to_numpy()
            invalid |= filled != np.round(filled)
        for row in np.flatnonzero(invalid & ~drop):
            if on_bad_lines == "raise":
                what = "an integer" if kind == "int" else "a number"
                raise DataFormatError(
                    path, f"not {what}: {frame[name].iloc[row]!r}", line=int(file_lines[row]), field=name
                )
            bad.add(int(file_lines[row]), f"field '{name}' = {frame[name].iloc[row]!r}")
        drop |= invalid
        frame[name] = values
    frame = frame.loc[~drop].reset_index(drop=True)
    for name, kind in numeric.items():
        frame[name] = frame[name].astype("int64" if kind == "int" else "float64")
    return frame, bad


def _split(text: str, sep: str, quoting: bool) -> list[str]:
    if not quoting:
        return text.split(sep)
    return next(csv.reader([text], delimiter=sep), [])


def raw_line_of_offset(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1


YEAR_IN_TITLE = re.compile(r"\((\d{4})\)\s*$")
