"""Fixtures for the language-model layer tests.

Real models load once per test session (MiniLM ~6 s; SmolLM2 ~1-5 s from the converted copy
in the user cache, ~30 s the very first time it is converted from GGUF). Every cache a test
writes goes to a temporary folder.
"""

from __future__ import annotations

import os

import pytest

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="session")
def minilm():
    """(loaded SentenceTransformer, cache identity) of the offline default encoder."""
    from lucidrec.lm.models import load_sentence_transformer, locate_encoder

    location = locate_encoder("all-MiniLM-L6-v2")
    return load_sentence_transformer(location), location.identity


class CountingEncoder:
    """Wraps a sentence-transformers model and counts encode() calls and texts."""

    def __init__(self, model):
        self.model, self.calls, self.texts = model, 0, 0

    def encode(self, texts, **kwargs):
        self.calls += 1
        self.texts += len(texts)
        return self.model.encode(texts, **kwargs)

    def __getattr__(self, name):
        return getattr(self.model, name)


@pytest.fixture
def counting_encoder(minilm):
    return CountingEncoder(minilm[0])


@pytest.fixture(scope="session")
def smollm2(tmp_path_factory):
    """The offline default chat model, loaded once, with a session-private response cache."""
    from lucidrec.lm.chat.transformers_local import TransformersChatModel

    model = TransformersChatModel(cache={"dir": tmp_path_factory.mktemp("smol-cache")}, batch_size=4,
                                  show_progress=False)
    model.load()
    return model


@pytest.fixture
def fresh_smollm2(smollm2, tmp_path):
    """A second front-end on the same loaded weights, with its own empty cache and counters."""
    from lucidrec.lm.chat.transformers_local import TransformersChatModel

    return TransformersChatModel(cache={"dir": tmp_path}, batch_size=4, show_progress=False,
                                 hf_model=smollm2.model, hf_tokenizer=smollm2.tokenizer)
