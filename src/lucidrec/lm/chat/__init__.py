"""Chat backends behind one interface; :func:`create_chat_model` builds one from a config.

The registry is explicit: a backend name maps to its config class (``lucidrec.lm.config``) and
the module + class implementing it, imported only when used.
"""

from __future__ import annotations

import importlib

from lucidrec.errors import UnknownNameError
from lucidrec.lm.chat.base import ChatModel, ChoiceScore
from lucidrec.lm.chat.messages import ChatRequest, ChatResponse, TokenLogprob
from lucidrec.lm.config import ChatConfigBase, chat_config

CHAT_BACKENDS: dict[str, str] = {
    "openai": "lucidrec.lm.chat.openai_http:OpenAIChatModel",
    "transformers": "lucidrec.lm.chat.transformers_local:TransformersChatModel",
    "recorded": "lucidrec.lm.chat.recorded:RecordedChatModel",
    "mock": "lucidrec.lm.chat.mock:MockChatModel",
}


def backend_class(name: str) -> type[ChatModel]:
    if name not in CHAT_BACKENDS:
        raise UnknownNameError("chat backend", name, list(CHAT_BACKENDS))
    module, attribute = CHAT_BACKENDS[name].split(":")
    return getattr(importlib.import_module(module), attribute)


def create_chat_model(config: ChatConfigBase | dict | str | None = None, *, response_cache=None, **overrides) -> ChatModel:
    """``create_chat_model("openai", model="gpt-4o-mini")``, ``create_chat_model({"backend": "mock"})``, ...

    ``None`` gives the offline default: SmolLM2-135M-Instruct through transformers. Keyword
    overrides are config fields (``cache={"dir": ...}``, ``model=...``); ``response_cache`` shares an
    open :class:`~lucidrec.lm.cache.ResponseCache` between models.
    """
    resolved = chat_config(config, **overrides)
    return backend_class(resolved.backend)(resolved, response_cache)


__all__ = ["CHAT_BACKENDS", "ChatModel", "ChatRequest", "ChatResponse", "ChoiceScore", "TokenLogprob",
           "backend_class", "create_chat_model"]
