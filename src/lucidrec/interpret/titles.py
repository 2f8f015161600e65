"""Item titles for prompts and answers, and how a generated answer is matched against a title.

Normalisation (both sides): lower case; a trailing release year like ``(1995)`` removed; a trailing
article moved to the front (MovieLens writes "Usual Suspects, The"); punctuation dropped; spaces
collapsed. A generated answer matches a title when the normalised title occurs in the normalised
answer (as whole words), or, fuzzily, when their token-F1 reaches a threshold (0.8 by default).
"""

from __future__ import annotations

import functools
import logging
import re
import unicodedata
from collections import Counter
from dataclasses import dataclass

from lucidrec.data.sequences import SequenceData

log = logging.getLogger(__name__)

_YEAR = re.compile(r"\(\s*\d{4}\s*\)")
_TRAILING_ARTICLE = re.compile(r"^(?P<body>.*?),\s*(?P<article>the|a|an|les|la|le|il|el|das|der|die)\s*$")
_NON_WORD = re.compile(r"[^\w\s]")


@functools.lru_cache(maxsize=1 << 16)
def normalise_title(text: str) -> str:
    text = unicodedata.normalize("NFKC", text).lower()
    text = _YEAR.sub(" ", text).strip()
    # Alternative titles in parentheses ("Seven (Se7en)") stay: they are part of what a reader may say.
    match = _TRAILING_ARTICLE.match(text)
    if match:
        text = f"{match['article']} {match['body']}"
    text = _NON_WORD.sub(" ", text)
    return " ".join(text.split())


def token_f1(answer: str, title: str) -> float:
    """Token-level F1 between the normalised answer and the normalised title."""
    predicted, gold = normalise_title(answer).split(), normalise_title(title).split()
    if not predicted or not gold:
        return 0.0
    common = sum((Counter(predicted) & Counter(gold)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(predicted), common / len(gold)
    return 2 * precision * recall / (precision + recall)


def contains_title(answer: str, title: str) -> bool:
    """The normalised title occurs in the normalised answer as whole words."""
    needle = normalise_title(title)
    return bool(needle) and f" {needle} " in f" {normalise_title(answer)} "


@dataclass
class CatalogTitles:
    """Titles of item indices 1..N (index 0 unused). Items without a title are named ``item <id>``."""

    titles: list[str]
    missing: int

    @classmethod
    def from_data(cls, data: SequenceData, field: str = "title") -> "CatalogTitles":
        titles, missing = [""], 0
        catalog = data.catalog
        for item_id in data.item_ids[1:]:
            text = catalog.record(str(item_id)).get(field, "")
            text = " ".join(str(text).split())
            if not text:
                missing += 1
                text = f"item {item_id}"
            titles.append(text)
        if missing:
            log.warning("%d of %d items have no %s: they are named 'item <id>'", missing, len(titles) - 1, field)
        return cls(titles, missing)

    def __getitem__(self, index: int) -> str:
        return self.titles[index]

    def __len__(self) -> int:
        return len(self.titles) - 1

    def distinct(self) -> tuple[list[str], list[int]]:
        """The distinct titles (in item order) and, per item index, the position of its title there."""
        position: dict[str, int] = {}
        of_item = [-1]
        for title in self.titles[1:]:
            of_item.append(position.setdefault(title, len(position)))
        return list(position), of_item
