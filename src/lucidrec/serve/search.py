"""Item search by title: exact and substring matches first, then the nearest titles by the sentence
encoder (so "space adventure" finds "Star Wars" too)."""

from __future__ import annotations

import logging

import numpy as np

log = logging.getLogger(__name__)


class TitleSearch:
    """Over titles of item indices ``1..n`` (``titles[0]`` is item 1)."""

    def __init__(self, titles: list[str], encoder=None):
        self.titles = titles
        self._folded = [t.casefold() for t in titles]
        self.encoder_name: str | None = None
        self._vectors: np.ndarray | None = None
        try:
            if encoder is None:
                from lucidrec.lm.encoder import TextEncoder

                encoder = TextEncoder(show_progress=False)
            self._vectors = encoder.encode(titles)
            self._encoder = encoder
            self.encoder_name = getattr(encoder, "identity", type(encoder).__name__)
        except Exception as exc:  # no encoder installed or found: substring search still works
            log.warning("title search without the sentence encoder: %s", exc)

    def search(self, query: str, limit: int) -> list[tuple[int, float, str]]:
        """(item index, score, how it matched) best first; score 1.0 for a substring match, the cosine
        similarity for the encoder's."""
        folded = query.casefold().strip()
        if not folded:
            return []
        starts = [i for i, t in enumerate(self._folded) if t.startswith(folded)]
        contains = [i for i, t in enumerate(self._folded) if folded in t and not t.startswith(folded)]
        hits = [(i + 1, 1.0, "title") for i in (starts + contains)[:limit]]
        if len(hits) < limit and self._vectors is not None:
            seen = {i for i, _, _ in hits}
            similarity = self._vectors @ self._encoder.encode([query])[0]
            for i in np.argsort(-similarity, kind="stable"):
                if len(hits) >= limit:
                    break
                if int(i) + 1 not in seen:
                    hits.append((int(i) + 1, float(similarity[i]), "encoder"))
        return hits
