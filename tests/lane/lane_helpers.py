"""Helpers of the LANE tests: a fixed valid preference answer and a small deterministic sentence encoder."""

from __future__ import annotations

import hashlib
import json

import numpy as np

PREFERENCES = {f"Preference{k + 1}": text for k, text in enumerate(
    ["gritty crime dramas", "light romantic comedies", "classic science fiction", "animated family films",
     "documentaries about music"])}


class HashEncoder:
    """A stand-in sentence encoder: unit vectors from a hash of each text (same text, same vector)."""

    identity = "hash-encoder"

    def __init__(self, dim: int = 16):
        self.dim = dim
        self.encoded: list[str] = []

    def encode(self, texts, show_progress=False):
        self.encoded.extend(texts)
        out = np.zeros((len(texts), self.dim), np.float32)
        for i, text in enumerate(texts):
            seed = int.from_bytes(hashlib.sha1(text.encode()).digest()[:4], "little")
            v = np.random.default_rng(seed).standard_normal(self.dim)
            out[i] = v / np.linalg.norm(v)
        return out


def fixed_answer() -> str:
    return json.dumps(PREFERENCES)
