"""The shared language-model layer: a cached text encoder and interchangeable chat models.

- :class:`TextEncoder` (``encoder.py``): sentence-transformers with an on-disk vector cache.
- item text builders (``text.py``) and item matrices for frozen tables (``item_vectors.py``).
- :func:`create_chat_model` (``chat/``): OpenAI-compatible HTTP, local transformers (incl. GGUF),
  recorded JSONL answers and a mock, all with the same cache, accounting and error policy.
- structured JSON answers with bounded re-asks (``structured.py``) and versioned prompt templates
  (``prompts/``); the OpenAI-compatible server for local models is ``lucidrec.serve.lm_app``;
- a frozen causal LM that reads soft tokens spliced into a prompt (``soft_prompt.py``).

Importing this package is cheap: torch, transformers, sentence-transformers and openai load only
when a model is used. Names below resolve lazily.
"""

from __future__ import annotations

import importlib

_EXPORTS = {
    "TextEncoder": "lucidrec.lm.encoder",
    "EncoderConfig": "lucidrec.lm.config",
    "CacheConfig": "lucidrec.lm.config",
    "SamplingParams": "lucidrec.lm.config",
    "OpenAIChatConfig": "lucidrec.lm.config",
    "TransformersChatConfig": "lucidrec.lm.config",
    "RecordedChatConfig": "lucidrec.lm.config",
    "MockChatConfig": "lucidrec.lm.config",
    "chat_config": "lucidrec.lm.config",
    "ChatModel": "lucidrec.lm.chat",
    "ChatRequest": "lucidrec.lm.chat",
    "ChatResponse": "lucidrec.lm.chat",
    "create_chat_model": "lucidrec.lm.chat",
    "CHAT_BACKENDS": "lucidrec.lm.chat",
    "ResponseCache": "lucidrec.lm.cache",
    "VectorCache": "lucidrec.lm.vector_cache",
    "Usage": "lucidrec.lm.accounting",
    "load_prompt": "lucidrec.lm.prompts",
    "PromptTemplate": "lucidrec.lm.prompts",
    "complete_structured": "lucidrec.lm.structured",
    "extract_json": "lucidrec.lm.structured",
    "StructuredResult": "lucidrec.lm.structured",
    "build_item_texts": "lucidrec.lm.text",
    "attribute_views": "lucidrec.lm.text",
    "encode_catalog": "lucidrec.lm.item_vectors",
    "save_item_matrix": "lucidrec.lm.item_vectors",
    "load_item_matrix": "lucidrec.lm.item_vectors",
    "expected_value": "lucidrec.lm.scoring",
    "SoftPromptLM": "lucidrec.lm.soft_prompt",
    "SoftPromptLMConfig": "lucidrec.lm.soft_prompt",
}

__all__ = sorted(_EXPORTS)


def __getattr__(name: str):
    if name not in _EXPORTS:
        raise AttributeError(f"module 'lucidrec.lm' has no attribute {name!r}")
    value = getattr(importlib.import_module(_EXPORTS[name]), name)
    globals()[name] = value
    return value


def __dir__():
    return __all__
