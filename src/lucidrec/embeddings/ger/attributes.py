"""Attribute sets: the named, human-readable dimensions GER scores items and users on.

One TOML file per domain (shipped: ``movies``, ``beauty``, ``scientific``; any user file works)::

    domain = "movies"            # free label
    noun = "movie"               # what an item is called in prompts ("Rate this movie ...")
    version = "1"                # bump when the wording changes (part of every score cache key)

    [[attributes]]
    name = "humour"                                   # short; no ':' or line breaks
    description = "how funny the movie is"            # one line
    low = "a serious movie with no jokes at all"      # what a LOW score means (the low anchor)
    high = "a hilarious comedy full of jokes"         # what a HIGH score means (the high anchor)

Errors name the file and the offending field (``attributes[3].low``).
"""

from __future__ import annotations

import hashlib
import json
import tomllib
from dataclasses import asdict, dataclass
from pathlib import Path

from lucidrec.errors import DataFormatError, UnknownNameError

ATTRIBUTES_DIR = Path(__file__).parent / "attributes"
REQUIRED = ("name", "description", "low", "high")
#: dataset-name prefix -> shipped attribute set (first match wins)
DOMAIN_BY_DATASET = (
    ("ml-", "movies"),
    ("movielens", "movies"),
    ("amazon-beauty", "beauty"),
    ("amazon-luxury", "beauty"),
    ("amazon-all-beauty", "beauty"),
    ("amazon-scientific", "scientific"),
    ("amazon-industrial", "scientific"),
)


@dataclass(frozen=True)
class Attribute:
    name: str
    description: str
    low: str
    high: str


@dataclass(frozen=True)
class AttributeSet:
    domain: str
    noun: str
    version: str
    attributes: tuple[Attribute, ...]
    source: str = ""

    @property
    def names(self) -> list[str]:
        return [a.name for a in self.attributes]

    def __len__(self) -> int:
        return len(self.attributes)

    def fingerprint(self) -> str:
        """Hash of everything that changes a score (not the file's location)."""
        payload = {"domain": self.domain, "noun": self.noun, "version": self.version,
                   "attributes": [asdict(a) for a in self.attributes]}
        return hashlib.sha1(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:12]

    def to_dict(self) -> dict:
        return {"domain": self.domain, "noun": self.noun, "version": self.version, "source": self.source,
                "attributes": [asdict(a) for a in self.attributes]}


def parse_attributes(data: dict, source: str = "<attributes>") -> AttributeSet:
    if not isinstance(data, dict):
        raise DataFormatError(source, "expected a table at the top level")
    for key in ("domain", "noun"):
        if not isinstance(data.get(key), str) or not data[key].strip():
            raise DataFormatError(source, "missing or empty (a non-empty string is required)", field=key)
    items = data.get("attributes")
    if not isinstance(items, list) or not items:
        raise DataFormatError(source, "missing or empty: add one [[attributes]] table per attribute", field="attributes")
    unknown_top = set(data) - {"domain", "noun", "version", "description", "attributes"}
    if unknown_top:
        raise DataFormatError(source, f"unknown key(s) {sorted(unknown_top)}", field=sorted(unknown_top)[0])
    out, seen = [], set()
    for i, entry in enumerate(items):
        where = f"attributes[{i}]"
        if not isinstance(entry, dict):
            raise DataFormatError(source, "must be a table with name, description, low, high", field=where)
        extra = set(entry) - set(REQUIRED)
        if extra:
            raise DataFormatError(source, f"unknown key(s) {sorted(extra)} (valid: {', '.join(REQUIRED)})",
                                  field=f"{where}.{sorted(extra)[0]}")
        for key in REQUIRED:
            value = entry.get(key)
            if not isinstance(value, str) or not value.strip():
                raise DataFormatError(source, "missing or empty (a non-empty string is required)", field=f"{where}.{key}")
            if "\n" in value.strip():
                raise DataFormatError(source, "must be one line", field=f"{where}.{key}")
        name = entry["name"].strip()
        if ":" in name or '"' in name:
            raise DataFormatError(source, f"name {name!r} must not contain ':' or '\"'", field=f"{where}.name")
        if name.lower() in seen:
            raise DataFormatError(source, f"duplicate attribute name {name!r}", field=f"{where}.name")
        seen.add(name.lower())
        out.append(Attribute(name, entry["description"].strip(), entry["low"].strip(), entry["high"].strip()))
    return AttributeSet(data["domain"].strip(), data["noun"].strip(), str(data.get("version", "1")), tuple(out), source)


def available_attribute_sets() -> dict[str, Path]:
    return {p.stem: p for p in sorted(ATTRIBUTES_DIR.glob("*.toml"))}


def load_attributes(name_or_path: str | Path) -> AttributeSet:
    """A shipped set by name (``movies``, ``beauty``, ...) or any TOML file path."""
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        shipped = available_attribute_sets()
        if str(name_or_path) not in shipped:
            if str(name_or_path).endswith(".toml") or "/" in str(name_or_path):
                raise DataFormatError(path, "attribute file not found")
            raise UnknownNameError("attribute set", str(name_or_path), list(shipped))
        path = shipped[str(name_or_path)]
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise DataFormatError(path, f"not valid TOML: {exc}") from None
    return parse_attributes(data, str(path))


def domain_for_dataset(dataset: str) -> str | None:
    """The shipped attribute set for a dataset name, where obvious (``ml-*`` -> movies, ...)."""
    name = dataset.lower()
    for prefix, domain in DOMAIN_BY_DATASET:
        if name.startswith(prefix):
            return domain
    return None


def resolve_attributes(choice: str | None, dataset: str) -> AttributeSet:
    """``choice`` (a set name or file) wins; otherwise the set matching the dataset name."""
    if choice:
        return load_attributes(choice)
    domain = domain_for_dataset(dataset)
    if domain is None:
        from lucidrec.config import ConfigError

        raise ConfigError(f"no attribute set is known for dataset '{dataset}': set embedding.attributes to one of "
                          f"{', '.join(available_attribute_sets())} or to a TOML file")
    return load_attributes(domain)
