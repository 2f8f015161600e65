"""Typed configuration helpers: every component config is a pydantic model with ``extra="forbid"``.

``validate_config`` turns pydantic's errors into one line that names the component, the bad key
and the valid keys, and ``apply_overrides`` implements ``--set a.b=value`` on nested dicts.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, ValidationError

from lucidrec.errors import LucidrecError

M = TypeVar("M", bound=BaseModel)


class StrictConfig(BaseModel):
    """Base for component configs: unknown keys are errors, values are validated on assignment."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, protected_namespaces=())


class ConfigError(LucidrecError, ValueError):
    pass


def validate_config(cls: type[M], values: dict | None, where: str) -> M:
    try:
        return cls.model_validate(values or {})
    except ValidationError as exc:
        problems = []
        for error in exc.errors():
            key = ".".join(str(p) for p in error["loc"])
            if error["type"] == "extra_forbidden":
                valid = _fields_at(cls, error["loc"][:-1])
                problems.append(f"unknown key '{key}' (valid keys: {', '.join(valid)})")
            else:
                problems.append(f"'{key}': {_message(error)}" if key else _message(error))
        raise ConfigError(f"{where}: " + "; ".join(problems)) from None


def _message(error: dict) -> str:
    """The error's own words: a ValueError raised in a validator (e.g. a nested component's
    ConfigError) without pydantic's "Value error, " prefix."""
    raised = (error.get("ctx") or {}).get("error")
    return str(raised) if isinstance(raised, Exception) else error["msg"]


def _fields_at(cls: type[BaseModel], path) -> list[str]:
    """Field names of the (nested) config class found by following ``path`` from ``cls``."""
    for part in path:
        field = cls.model_fields.get(str(part))
        annotation = getattr(field, "annotation", None)
        if not (isinstance(annotation, type) and issubclass(annotation, BaseModel)):
            return []
        cls = annotation
    return sorted(cls.model_fields)


def load_toml(path: str | Path) -> dict:
    path = Path(path)
    try:
        return tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: not valid TOML ({exc})") from None
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None


def parse_value(text: str):
    """``--set`` values: JSON/TOML-like literals (numbers, true/false, lists, quoted strings), else a plain string."""
    lowered = text.strip()
    if lowered in ("true", "false"):
        return lowered == "true"
    if lowered in ("null", "none", "None"):
        return None
    try:
        return json.loads(lowered)
    except json.JSONDecodeError:
        return text


def apply_overrides(values: dict, overrides: list[str]) -> dict:
    out = json.loads(json.dumps(values))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got '{item}'")
        key, raw = item.split("=", 1)
        node = out
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: '{part}' is not a section")
        node[parts[-1]] = parse_value(raw)
    return out
