"""Item prompts and SCFT views.

A prompt is a list of *segments* (``"key is value"`` attributes, or the title alone) joined by
``"; "`` under an optional instruction line (``lucidrec.lm.text``). A view shuffles the segments
and drops the last ``floor(ratio * n)`` (the paper's attribute-level augmentation). When that
would drop nothing (``floor(ratio * n) == 0``, e.g. a title-only catalog) and the word fallback is
on, each kept segment instead loses ``floor(ratio * words)`` of its value's words (order kept).
"""

from __future__ import annotations

import hashlib
import json
import math
from dataclasses import dataclass
from typing import Sequence

import numpy as np

from lucidrec.data.dataset import ItemCatalog
from lucidrec.lm.text import attribute_pairs, domain_instruction, drop_attributes, fallback_text, title_text

from lucidrec.embeddings.llmemb.config import LLMEmbConfig

KEY_SEPARATOR = " is "


@dataclass
class ItemPrompts:
    """Segments per item (vocabulary order, padding excluded) and the un-augmented prompt texts."""

    item_ids: list[str]
    segments: list[list[str]]  # empty list: the item has no text (prompt = "item <id>", not tuned on)
    texts: list[str]
    head: str  # the instruction line ('' for none)

    def with_text(self) -> np.ndarray:
        return np.array([i for i, s in enumerate(self.segments) if s], dtype=np.int64)

    def digest(self) -> str:
        payload = json.dumps([self.item_ids, self.texts, self.segments, self.head], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()[:20]


def instruction_line(config: LLMEmbConfig) -> str:
    return config.prompts.instruction.strip() if config.prompts.instruction else domain_instruction(config.prompts.domain)


def join(segments: Sequence[str], head: str) -> str:
    """``head`` (if any) on the first line, then the segments joined by ``"; "``."""
    body = "; ".join(segments)
    return f"{head}\n{body}" if head else body


def item_segments(catalog: ItemCatalog, item_id: str, config: LLMEmbConfig) -> list[str]:
    if config.prompts.text_form == "title":
        if "title" in config.prompts.exclude_fields:
            return []
        title = title_text(catalog, item_id)[: config.prompts.max_value_chars].strip()
        return [title] if title else []
    return attribute_pairs(catalog.record(item_id), exclude=config.prompts.exclude_fields, max_value_chars=config.prompts.max_value_chars)


def build_prompts(catalog: ItemCatalog, item_ids: Sequence[str], config: LLMEmbConfig) -> ItemPrompts:
    """Prompts for ``item_ids`` (pass the vocabulary without ``<pad>``)."""
    ids = [str(i) for i in item_ids]
    segments = [item_segments(catalog, item_id, config) for item_id in ids]
    head = instruction_line(config)
    texts = [join(s, head) if s else fallback_text(i) for i, s in zip(ids, segments)]
    return ItemPrompts(ids, segments, texts, head)


def drop_words(segment: str, ratio: float, rng: np.random.Generator) -> str:
    """Drop ``floor(ratio * n)`` random words of the segment's value (the ``key is`` part stays)."""
    key, value = (segment.split(KEY_SEPARATOR, 1) if KEY_SEPARATOR in segment else ("", segment))
    words = value.split()
    n_drop = min(math.floor(ratio * len(words)), max(len(words) - 1, 0))
    if n_drop:
        dropped = set(rng.choice(len(words), size=n_drop, replace=False).tolist())
        words = [w for i, w in enumerate(words) if i not in dropped]
    value = " ".join(words)
    return f"{key}{KEY_SEPARATOR}{value}" if key else value


def make_view(segments: Sequence[str], ratio: float, rng: np.random.Generator, word_fallback: bool = True) -> list[str]:
    """One augmented copy: shuffled, the last ``floor(ratio*n)`` segments dropped (word dropout fallback)."""
    kept = drop_attributes(list(segments), ratio, rng)
    if word_fallback and math.floor(ratio * len(segments)) == 0:
        kept = [drop_words(s, ratio, rng) for s in kept]
    return kept


def make_views(segments: Sequence[str], config: LLMEmbConfig, rng: np.random.Generator) -> tuple[str, str]:
    """The positive pair of one item, as prompt texts."""
    first = make_view(segments, config.tuning.dropout_ratio, rng, config.tuning.word_dropout_fallback)
    second = make_view(segments, config.tuning.dropout_ratio, rng, config.tuning.word_dropout_fallback)
    head = instruction_line(config)
    return join(first, head), join(second, head)
