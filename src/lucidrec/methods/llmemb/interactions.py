"""Training pairs for tuning the item encoder on interactions instead of attribute-dropout views.

A pair is two items one user interacted with in a row, taken from the *training* part of the split
only (held-out items and validation/test targets never enter). The encoder then learns, with the
same in-batch contrastive loss as SCFT (:mod:`.scft`), to put an item's text close to the text of
what tends to come next (as LLM2Rec's and Recformer's interaction-level objectives do). Pairs are
distinct, in both directions as they occurred; a repeat (a, a) and pairs with an item without text
are left out.
"""

from __future__ import annotations

import hashlib

import numpy as np

from lucidrec.data.sequences import Ragged


def next_item_pairs(train: Ragged, has_text: np.ndarray) -> np.ndarray:
    """(P, 2) distinct consecutive training pairs as item indices; ``has_text`` is a mask over item indices."""
    later = np.flatnonzero(train.positions() > 0)
    first, second = train.values[later - 1], train.values[later]
    keep = (first != second) & has_text[first] & has_text[second]
    pairs = np.stack([first[keep], second[keep]], axis=1)
    return np.unique(pairs, axis=0) if len(pairs) else pairs.reshape(0, 2)


def pairs_digest(pairs: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(pairs, dtype=np.int64).tobytes()).hexdigest()[:20]
