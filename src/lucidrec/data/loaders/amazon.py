"""Amazon review datasets (McAuley lab): the 2014 and 2018 releases, reviews + ``meta_*`` files.

- 2014: ``reviews_<Category>[_5].json[.gz]`` (JSON lines) or ``ratings_<Category>.csv``
  (user,item,rating,timestamp), and ``meta_<Category>.json[.gz]`` whose lines are Python dict
  literals (single quotes), with ``categories`` as a list of lists and ``description`` a string.
- 2018: ``<Category>[_5].json[.gz]`` (JSON lines) and ``meta_<Category>.json[.gz]`` (JSON lines),
  with ``category`` a list and ``description`` a list of strings; ``price`` is text like "$12.99".
"""

from __future__ import annotations

import ast
import gzip
import json
import re
from pathlib import Path

import pandas as pd

from lucidrec.data.dataset import Dataset, ItemCatalog
from lucidrec.data.loaders._delimited import BadLines, read_delimited
from lucidrec.errors import DataFormatError

TEXT_FIELDS = ("title", "brand", "categories", "description", "price")
_TAG = re.compile(r"<[^>]+>")


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _parse_line(text: str):
    try:
        return json.loads(text)
    except json.JSONDecodeError:
        # The 2014 metadata is written with Python's repr, not JSON.
        return ast.literal_eval(text)


def iter_records(path: Path, on_bad_lines: str, bad: BadLines):
    number = 0
    try:
        with _open_text(path) as handle:
            for number, text in enumerate(handle, start=1):
                yield from _record(path, number, text, on_bad_lines, bad)
    except (UnicodeDecodeError, OSError, EOFError) as exc:  # bad UTF-8, a truncated or corrupt gzip
        raise DataFormatError(path, f"unreadable after line {number} ({exc})", line=number + 1) from None


def _record(path: Path, number: int, text: str, on_bad_lines: str, bad: BadLines):
    if not text.strip():
        return
    try:
        record = _parse_line(text)
        if not isinstance(record, dict):
            raise ValueError("not an object")
    except (ValueError, SyntaxError) as exc:
        if on_bad_lines == "raise":
            raise DataFormatError(path, f"not a JSON object ({exc}): {text[:100]!r}", line=number) from None
        bad.add(number, "not a JSON object")
        return
    yield number, record


def _review_files(folder: Path) -> list[Path]:
    found = []
    for pattern in ("reviews_*.json*", "*_5.json*", "ratings_*.csv"):
        found += [p for p in sorted(folder.glob(pattern)) if not p.name.startswith("meta_")]
    if not found:  # 2018 full files are named after the category only, e.g. All_Beauty.json.gz
        found = [p for p in sorted(folder.glob("*.json*")) if not p.name.startswith("meta_")]
    return list(dict.fromkeys(found))


def detect(folder: Path) -> bool:
    return any(folder.glob("meta_*.json*")) and bool(_review_files(folder))


def load(folder: Path, name: str, on_bad_lines: str = "raise") -> Dataset:
    reviews = _review_files(folder)
    if not reviews:
        raise DataFormatError(folder, "no Amazon review file (reviews_*.json[.gz], *_5.json[.gz] or ratings_*.csv)")
    path = reviews[0]
    notes = []
    if path.suffix == ".csv":
        frame, bad = read_delimited(
            path, ["user", "item", "rating", "timestamp"], sep=",",
            numeric={"rating": "float", "timestamp": "int"}, on_bad_lines=on_bad_lines,
        )
        interactions = pd.DataFrame({"user_id": frame["user"], "item_id": frame["item"],
                                     "timestamp": frame["timestamp"], "rating": frame["rating"]})
    else:
        bad = BadLines(str(path))
        rows = []
        for number, record in iter_records(path, on_bad_lines, bad):
            missing = [key for key in ("reviewerID", "asin") if not record.get(key)]
            if missing:
                if on_bad_lines == "raise":
                    raise DataFormatError(path, "missing value", line=number, field=missing[0])
                bad.add(number, f"missing '{missing[0]}'")
                continue
            rows.append((record["reviewerID"], record["asin"], record.get("unixReviewTime"), record.get("overall")))
        interactions = pd.DataFrame(rows, columns=["user_id", "item_id", "timestamp", "rating"])
    if bad.lines:
        notes.append(bad.summary())
    meta_files = sorted(folder.glob("meta_*.json*"))
    items = load_meta(meta_files[0], on_bad_lines, notes) if meta_files else ItemCatalog.empty()
    return Dataset(name, interactions, items, source=str(path), notes=notes)


def load_meta(path: Path, on_bad_lines: str = "raise", notes: list[str] | None = None) -> ItemCatalog:
    bad = BadLines(str(path))
    rows, seen = [], set()
    for number, record in iter_records(path, on_bad_lines, bad):
        asin = record.get("asin")
        if not asin:
            if on_bad_lines == "raise":
                raise DataFormatError(path, "missing value", line=number, field="asin")
            bad.add(number, "missing 'asin'")
            continue
        if asin in seen:  # the 2018 metadata repeats some products verbatim
            continue
        seen.add(asin)
        rows.append({"item_id": asin, **meta_text(record)})
    if notes is not None and bad.lines:
        notes.append(bad.summary())
    frame = pd.DataFrame(rows, columns=["item_id", *TEXT_FIELDS])
    for column in TEXT_FIELDS:
        frame[column] = frame[column].astype("string")
    return ItemCatalog(frame)


def meta_text(record: dict) -> dict[str, str | None]:
    """Normalise one metadata record of either release to plain-text fields."""
    categories = record.get("categories", record.get("category"))
    if categories and isinstance(categories[0], list):  # 2014: list of category paths
        flat = [c for path in categories for c in path]
    else:
        flat = list(categories or [])
    description = record.get("description")
    if isinstance(description, list):
        description = " ".join(description)
    price = record.get("price")
    return {
        "title": _clean(record.get("title")),
        "brand": _clean(record.get("brand")),
        "categories": _clean(", ".join(dict.fromkeys(c for c in flat if c))),
        "description": _clean(description),
        "price": _clean(str(price)) if price not in (None, "") else None,
    }


def _clean(value) -> str | None:
    if value is None:
        return None
    text = _TAG.sub(" ", str(value))
    text = " ".join(text.split())
    return text or None
