"""Measurement records: the figures of a benchmark that is not a grid of training runs (evaluation cost,
language-model speed, lucidrec beside another library), one small JSON file per measurement.

A record holds the measurement's name and title, the command that made it, the machine (cores, processor,
torch version and threads, load average when it finished) and one or more tables of raw values::

    {"format": 1, "kind": "measurement", "name": "data_eval", "title": "Data loading and evaluation cost",
     "command": "python bench/bench_data_eval.py --threads 1", "machine": {...},
     "tables": [{"title": "...", "columns": [{"name": "dataset"}, {"name": "seconds", "digits": 2}],
                 "rows": [["ml-1m", 0.8123]], "note": "..."}],
     "extra": {...}}

Values stay unrounded in the record; a column's ``digits`` (and ``suffix``) say how the report prints them.
``lucidrec report`` renders every measurement record of the folders it is given as tables, after the grid
rows; a damaged one is named and skipped with a warning. Written atomically (``lucidrec.files``).
"""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, ValidationError, model_validator

from lucidrec.config import StrictConfig
from lucidrec.errors import DataFormatError
from lucidrec.experiments.records import KIND_MEASUREMENT, is_measurement, record_paths
from lucidrec.files import numpy_default, read_json, write_json_atomic

log = logging.getLogger(__name__)

FORMAT = 1
#: Where the bench scripts write their records, relative to the working directory (the repository's root).
DEFAULT_FOLDER = Path("results") / "measurements"

Value = str | int | float | bool | None


class Column(StrictConfig):
    name: str = Field(description="the column's heading")
    digits: int | None = Field(None, ge=0, le=12, description="decimals of a number (default: integers with "
                               "thousands separators, other numbers to 4 significant digits)")
    suffix: str = Field("", description="printed after a number, e.g. '×' or ' s'")


class MeasurementTable(StrictConfig):
    title: str
    columns: list[Column] = Field(min_length=1)
    rows: list[list[Value]]
    note: str = ""

    @model_validator(mode="after")
    def _rows_fit_the_columns(self):
        for index, row in enumerate(self.rows):
            if len(row) != len(self.columns):
                raise ValueError(f"row {index} of table '{self.title}' has {len(row)} values for "
                                 f"{len(self.columns)} columns")
        return self


class MeasurementRecord(StrictConfig):
    format: Literal[1]
    kind: Literal["measurement"]
    name: str = Field(min_length=1)
    title: str
    command: str
    machine: dict[str, Any] = Field(default_factory=dict)
    tables: list[MeasurementTable] = Field(min_length=1)
    extra: dict[str, Any] = Field(default_factory=dict, description="figures that are not in a table")


def format_value(value: Value, column: Column) -> str:
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, str):
        return value
    if column.digits is not None:
        text = f"{value:,.{column.digits}f}"
    elif isinstance(value, int):
        text = f"{value:,}"
    else:
        text = f"{value:.4g}"
    return text + column.suffix


def portable_command(argv: list[str] | None = None, cwd: Path | None = None) -> str:
    """The command line as a user would type it from the repository: ``python`` for the interpreter, paths
    under the working directory relative to it, and other absolute paths (a virtual environment elsewhere)
    shortened to their last two parts, so a committed record names no folder of one machine."""
    argv = list(sys.argv if argv is None else argv)
    cwd = Path(cwd or Path.cwd()).resolve()

    def portable(arg: str) -> str:
        prefix, eq, value = arg.partition("=") if "=" in arg else ("", "", arg)  # --record=PATH, NAME=PATH
        path = Path(value)
        if path.is_absolute():
            try:
                value = path.resolve().relative_to(cwd).as_posix()
            except ValueError:
                value = ".../" + "/".join(path.parts[-2:])
        return prefix + eq + value

    return shlex.join(["python", *(portable(arg) for arg in argv)])


def machine_facts(threads: int | None = None) -> dict:
    """The machine of :func:`lucidrec.experiments.records.machine`, the torch threads the measured code used
    (when it ran elsewhere, e.g. in a child process) and the load average (other jobs slow a measurement)."""
    from lucidrec.experiments.records import machine

    facts = machine()
    if threads is not None:
        facts["torch_threads"] = threads
    try:
        facts["load_average"] = [round(x, 2) for x in os.getloadavg()]
    except OSError:
        pass
    return facts


def build_measurement(name: str, title: str, tables: list[dict | MeasurementTable], *, command: str | None = None,
                      threads: int | None = None, extra: dict | None = None, machine: dict | None = None) -> dict:
    """A checked record (a ValueError names what does not fit, before anything is written). numpy numbers and
    arrays become plain JSON numbers and lists; NaN and infinity are written as null."""
    tables = [t.model_dump() if isinstance(t, MeasurementTable) else t for t in tables]
    plain = json.loads(json.dumps({"tables": tables, "extra": extra or {}}, default=numpy_default),
                       parse_constant=lambda _: None)
    record = MeasurementRecord(format=FORMAT, kind=KIND_MEASUREMENT, name=name, title=title,
                               command=command if command is not None else portable_command(),
                               machine=machine if machine is not None else machine_facts(threads),
                               tables=plain["tables"], extra=plain["extra"])
    return record.model_dump(mode="json")


def write_measurement(path: str | Path | None, record: dict) -> Path:
    """Write ``record`` to ``path`` (default ``results/measurements/<name>.json``) atomically."""
    path = Path(path) if path else DEFAULT_FOLDER / f"{record['name']}.json"
    return write_json_atomic(path, record, default=numpy_default)


def load_measurement(path: str | Path) -> MeasurementRecord:
    """One measurement record, checked: a DataFormatError names the file and the field that is wrong."""
    return _validated(path, read_json(path))


def _validated(path: str | Path, data) -> MeasurementRecord:
    try:
        return MeasurementRecord.model_validate(data)
    except ValidationError as exc:
        error = exc.errors()[0]
        field = ".".join(str(part) for part in error["loc"]) or None
        raise DataFormatError(path, f"damaged measurement record ({error['msg']})", field=field) from None


def read_measurements(results_dirs: list[Path]) -> tuple[list[tuple[Path, MeasurementRecord]], list[str]]:
    """Every measurement record of the folders (sorted by file name), and one warning per damaged one.
    Files that are not measurement records (grid records, unreadable JSON) are left to
    :func:`lucidrec.experiments.records.read_records`, which warns about the unreadable ones."""
    found, skipped = [], []
    for folder in results_dirs:
        for path in record_paths(Path(folder)):
            try:
                data = read_json(path)
            except (DataFormatError, UnicodeDecodeError):
                continue
            if not is_measurement(data):
                continue
            try:
                found.append((path, _validated(path, data)))
            except DataFormatError as exc:
                message = f"skipped damaged record {exc}"
                log.warning(message)
                skipped.append(message)
    return found, skipped
