"""Exception types that carry enough context to act on (file, line, field, valid choices)."""

from __future__ import annotations


class LucidrecError(Exception):
    """Base class for every error lucidrec raises on purpose."""


class DataFormatError(LucidrecError, ValueError):
    """A data file does not match the format its loader expects.

    The message always names the file, and the line and field when they are known, so the user can
    open the file at the right place.
    """

    def __init__(self, path, message: str, line: int | None = None, field: str | None = None):
        self.path = str(path)
        self.line = line
        self.field = field
        where = self.path
        if line is not None:
            where += f", line {line}"
        if field is not None:
            where += f", field '{field}'"
        super().__init__(f"{where}: {message}")


class UnknownNameError(LucidrecError, KeyError):
    """A name looked up in a registry (dataset, model, metric, ...) does not exist."""

    def __init__(self, kind: str, name: str, valid: list[str] | tuple[str, ...]):
        self.kind = kind
        self.name = name
        self.valid = sorted(valid)
        super().__init__(f"unknown {kind} '{name}'; valid {kind}s: {', '.join(self.valid) or '(none)'}")

    def __str__(self) -> str:  # KeyError would otherwise quote the whole message
        return self.args[0]
