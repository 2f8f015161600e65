"""Versioned prompt templates stored as TOML files.

Each file holds ``name``, ``version`` (bump it whenever the wording changes: the version is part
of the response-cache key, so old answers are not reused for a new prompt), a ``description``,
the ``variables`` it needs, and a list of ``[[messages]]`` with ``role`` and ``content``.
Placeholders use ``$name`` / ``${name}`` (``string.Template``) so JSON examples with braces need
no escaping; ``$$`` is a literal dollar sign.
"""

from __future__ import annotations

import string
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from lucidrec.errors import DataFormatError, UnknownNameError

PROMPTS_DIR = Path(__file__).parent


@dataclass(frozen=True)
class PromptRef:
    """Identifies a template in cache keys and run records."""

    name: str
    version: str


@dataclass(frozen=True)
class RenderedPrompt:
    """Messages ready for a ChatModel, remembering which template made them."""

    messages: list[dict]
    ref: PromptRef


@dataclass
class PromptTemplate:
    name: str
    version: str
    messages: list[dict]
    description: str = ""
    variables: list[str] = field(default_factory=list)
    path: Path | None = None

    @property
    def ref(self) -> PromptRef:
        return PromptRef(self.name, self.version)

    def render(self, **values) -> RenderedPrompt:
        missing = [v for v in self.variables if v not in values]
        if missing:
            raise KeyError(f"prompt '{self.name}' v{self.version} needs variable(s): {', '.join(missing)}")
        rendered = []
        for message in self.messages:
            try:
                content = string.Template(message["content"]).substitute({k: str(v) for k, v in values.items()})
            except KeyError as exc:
                raise KeyError(f"prompt '{self.name}' v{self.version} uses ${exc.args[0]} but it was not given") from None
            rendered.append({"role": message["role"], "content": content})
        return RenderedPrompt(rendered, self.ref)


def read_template(path: str | Path) -> PromptTemplate:
    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(path, f"not valid TOML: {exc}") from None
    for required in ("name", "version", "messages"):
        if required not in data:
            raise DataFormatError(path, "missing key", field=required)
    messages = data["messages"]
    for i, message in enumerate(messages):
        if not {"role", "content"} <= set(message) or message["role"] not in ("system", "user", "assistant"):
            raise DataFormatError(path, f"message {i} needs role (system|user|assistant) and content", field="messages")
    return PromptTemplate(str(data["name"]), str(data["version"]), messages, data.get("description", ""),
                          list(data.get("variables", [])), path)


def available_prompts(directory: str | Path | None = None) -> dict[str, Path]:
    folder = Path(directory) if directory else PROMPTS_DIR
    return {p.stem: p for p in sorted(folder.glob("*.toml"))}


def load_prompt(name: str, directory: str | Path | None = None) -> PromptTemplate:
    """A template by file stem from ``directory`` (default: the templates shipped with lucidrec)."""
    found = available_prompts(directory)
    if name not in found:
        raise UnknownNameError("prompt template", name, list(found))
    template = read_template(found[name])
    if template.name != name:
        raise DataFormatError(found[name], f"name '{template.name}' differs from the file name '{name}'", field="name")
    return template
