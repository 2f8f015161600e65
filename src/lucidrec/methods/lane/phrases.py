"""Preference phrases: the JSON answer's schema, the deterministic fallback, and splitting recorded texts."""

from __future__ import annotations

import re
from collections import Counter
from functools import lru_cache

from pydantic import RootModel, model_validator

_WORD = re.compile(r"[A-Za-z][A-Za-z'\-]+")
_STOPWORDS = frozenset("""a an and are as at be by for from in into is it its of on or the this to with vol volume
edition set pack size oz ml fl count pcs piece new original collection""".split())


def normalised(phrase: str) -> str:
    return " ".join(phrase.lower().split())


@lru_cache(maxsize=None)
def preferences_schema(n: int) -> type[RootModel]:
    """``{"Preference1": "...", ...}``: exactly ``n`` non-empty, pairwise distinct preferences."""

    class Preferences(RootModel[dict[str, str]]):
        @model_validator(mode="after")
        def _exactly_n_distinct(self):
            values = [v.strip() for v in self.root.values()]
            if len(values) != n:
                raise ValueError(f"expected exactly {n} preferences, got {len(values)}")
            if any(not v for v in values):
                raise ValueError("a preference is empty")
            seen = [normalised(v) for v in values]
            if len(set(seen)) != n:
                raise ValueError("a preference is repeated; give distinct, non-overlapping preferences")
            return self

    Preferences.__name__ = f"LanePreferences{n}"
    return Preferences


def fallback_phrases(texts: list[str], n: int, genres: list[str] | None = None) -> list[str]:
    """Deterministic preferences when the chat model gave none: the history's most frequent genres
    (``genres``: one comma-separated value per item, e.g. ml-100k's), then its most frequent title words
    (stop words and numbers left out), at most ``n``, most frequent first (ties: first seen), each
    phrased as an interest."""
    out: list[str] = []
    genre_counts: Counter[str] = Counter(g.strip() for value in (genres or []) for g in value.split(",") if g.strip())
    word_counts: Counter[str] = Counter()
    for text in texts:
        word_counts.update(w.lower() for w in _WORD.findall(text) if w.lower() not in _STOPWORDS)
    for value, _ in genre_counts.most_common() + word_counts.most_common():
        phrase = f"interest in {value}"
        if len(out) < n and normalised(phrase) not in {normalised(p) for p in out}:
            out.append(phrase)
    return out


def split_recorded(text: str, n: int) -> list[str]:
    """One recorded preference text -> at most ``n`` phrases.

    Rule: cut at sentence ends, semicolons and commas; a piece of fewer than three words (a list item
    such as "and mascaras") is joined to the piece before it; the leading "The user prefers" /
    "User prefers" of the first piece is kept out (it is common to every text); duplicates are dropped;
    the first ``n`` pieces are kept.
    """
    text = re.sub(r"^\s*(the\s+)?user\s+(prefers|likes|enjoys)\s+", "", text.strip(), flags=re.IGNORECASE)
    pieces: list[str] = []
    for raw in re.split(r"[.;,]\s+|[.;]$", text):
        piece = raw.strip(" .;,")
        if not piece:
            continue
        if pieces and len(piece.split()) < 3:
            pieces[-1] = f"{pieces[-1]}, {piece}"
        else:
            pieces.append(piece)
    out: list[str] = []
    for piece in pieces:
        if normalised(piece) not in {normalised(p) for p in out}:
            out.append(piece)
    return out[:n]
