"""Item text builders: one catalog row -> the text a method feeds to an encoder or an LLM.

Forms:

- ``title``: the title alone (LANE, plain text tables).
- ``attributes``: ``"key is value; key is value; ..."`` over every non-empty field (LLMEmb), with
  an optional domain instruction line first ("The beauty item has the following attributes:").
  Values are cut to ``max_value_chars`` (100), ';' inside values becomes ',' and newlines become
  spaces, so ';' only ever separates attributes and views can be cut on it.
- ``description``: a short prose description for GER: the title, then "Field: value." sentences.

Items with no text at all get ``FALLBACK_TEMPLATE`` ("item <id>") and are counted in
:attr:`ItemTexts.fallback_ids`, so callers can report how many vectors carry no content.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from typing import Literal, Sequence

import numpy as np

from lucidrec.data.dataset import ItemCatalog

TextForm = Literal["title", "attributes", "description"]
TEXT_FORMS: tuple[str, ...] = ("title", "attributes", "description")
FALLBACK_TEMPLATE = "item {item_id}"
MAX_VALUE_CHARS = 100
MAX_DESCRIPTION_CHARS = 600
_NEWLINES = re.compile(r"[\r\n]+")


@dataclass
class ItemTexts:
    """Texts aligned with the requested ids, plus which ids fell back to ``item <id>``."""

    item_ids: list[str]
    texts: list[str]
    form: str
    fallback_ids: list[str] = field(default_factory=list)

    @property
    def n_fallback(self) -> int:
        return len(self.fallback_ids)


def fallback_text(item_id: str) -> str:
    return FALLBACK_TEMPLATE.format(item_id=item_id)


def clean_value(value: str, max_chars: int | None = MAX_VALUE_CHARS) -> str:
    """One attribute value made safe for a ';'-separated list, cut to ``max_chars``."""
    text = _NEWLINES.sub(" ", value).replace(";", ",").strip()
    return text[:max_chars].rstrip() if max_chars else text


def field_label(name: str) -> str:
    return name.replace("_", " ").strip()


def attribute_pairs(record: dict[str, str], *, exclude: Sequence[str] = (),
                    max_value_chars: int | None = MAX_VALUE_CHARS) -> list[str]:
    """``["key is value", ...]`` for the non-empty fields of one record, in field order."""
    skip = set(exclude)
    pairs = []
    for name, value in record.items():
        if name in skip:
            continue
        cleaned = clean_value(value, max_value_chars)
        if cleaned:
            pairs.append(f"{field_label(name)} is {cleaned}")
    return pairs


def domain_instruction(domain: str | None) -> str:
    """LLMEmb's first prompt line, e.g. ``domain="beauty item"``; '' when no domain is given."""
    return f"The {domain} has the following attributes:" if domain else ""


def join_attributes(pairs: Sequence[str], domain: str | None = None) -> str:
    body = "; ".join(pairs)
    head = domain_instruction(domain)
    return f"{head}\n{body}" if head else body


def drop_attributes(pairs: Sequence[str], ratio: float, rng: np.random.Generator) -> list[str]:
    """Shuffle the pairs, then drop the last ``floor(ratio * n)`` of them (LLMEmb's augmentation).

    At least one attribute is always kept, so a view is never empty.
    """
    if not 0.0 <= ratio <= 1.0:
        raise ValueError(f"dropout ratio must be in [0, 1], got {ratio}")
    shuffled = [pairs[i] for i in rng.permutation(len(pairs))]
    keep = max(1, len(shuffled) - math.floor(ratio * len(shuffled))) if shuffled else 0
    return shuffled[:keep]


def title_text(catalog: ItemCatalog, item_id: str) -> str:
    return clean_value(catalog.title(item_id), None) if "title" in catalog.fields else ""


def attribute_text(catalog: ItemCatalog, item_id: str, *, domain: str | None = None, exclude: Sequence[str] = (),
                   max_value_chars: int | None = MAX_VALUE_CHARS) -> str:
    pairs = attribute_pairs(catalog.record(item_id), exclude=exclude, max_value_chars=max_value_chars)
    return join_attributes(pairs, domain) if pairs else ""


def description_text(catalog: ItemCatalog, item_id: str, *, exclude: Sequence[str] = (),
                     max_chars: int = MAX_DESCRIPTION_CHARS) -> str:
    """The title, then one "Field: value." sentence per other non-empty field, cut to ``max_chars``."""
    record = catalog.record(item_id)
    parts = []
    title = clean_value(record.get("title", ""), None)
    if title and "title" not in exclude:
        parts.append(title if title.endswith((".", "!", "?")) else title + ".")
    for name, value in record.items():
        if name == "title" or name in exclude:
            continue
        cleaned = clean_value(value, None)
        if cleaned:
            parts.append(f"{field_label(name).capitalize()}: {cleaned.rstrip('.')}.")
    text = " ".join(parts)
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip() + "..."


def build_item_texts(catalog: ItemCatalog, item_ids: Sequence[str], form: TextForm = "title", *,
                     domain: str | None = None, exclude: Sequence[str] = (),
                     max_value_chars: int | None = MAX_VALUE_CHARS,
                     max_description_chars: int = MAX_DESCRIPTION_CHARS) -> ItemTexts:
    """One text per id in ``form``; ids without text (or unknown to the catalog) get the fallback."""
    if form not in TEXT_FORMS:
        from lucidrec.errors import UnknownNameError

        raise UnknownNameError("text form", str(form), list(TEXT_FORMS))
    ids = [str(i) for i in item_ids]
    texts, fallback = [], []
    for item_id in ids:
        if form == "title":
            text = title_text(catalog, item_id)
        elif form == "attributes":
            text = attribute_text(catalog, item_id, domain=domain, exclude=exclude, max_value_chars=max_value_chars)
        else:
            text = description_text(catalog, item_id, exclude=exclude, max_chars=max_description_chars)
        if not text.strip():
            text = fallback_text(item_id)
            fallback.append(item_id)
        texts.append(text)
    return ItemTexts(ids, texts, form, fallback)


def attribute_views(catalog: ItemCatalog, item_ids: Sequence[str], *, ratio: float = 0.4, seed: int | None = 0,
                    rng: np.random.Generator | None = None, domain: str | None = None, exclude: Sequence[str] = (),
                    max_value_chars: int | None = MAX_VALUE_CHARS) -> tuple[list[str], list[str]]:
    """Two independently shuffled, attribute-dropped views per item: LLMEmb's positive pairs.

    Pass ``rng`` to continue a stream (e.g. one generator per epoch) or ``seed`` for a fresh one.
    Items without text give the fallback text in both views.
    """
    rng = rng if rng is not None else np.random.default_rng(seed)
    first, second = [], []
    for item_id in (str(i) for i in item_ids):
        pairs = attribute_pairs(catalog.record(item_id), exclude=exclude, max_value_chars=max_value_chars)
        if not pairs:
            first.append(fallback_text(item_id))
            second.append(fallback_text(item_id))
            continue
        first.append(join_attributes(drop_attributes(pairs, ratio, rng), domain))
        second.append(join_attributes(drop_attributes(pairs, ratio, rng), domain))
    return first, second
