"""Answers from a JSONL file of recorded LLM outputs, used as if the model had been called.

A record matches a request by, in order: the request's explicit ``key`` against ``key_field``
(e.g. ``{"user_id": ..., "preference": ...}`` with ``key_field="user_id"``,
``answer_field="preference"``); the whole message list against ``messages_field``; or the last
user message against ``prompt_field``. A request with no matching record fails with
:class:`RecordNotFoundError` (reported per request); nothing is ever invented. The file is already
a store, so this backend bypasses the response cache.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from lucidrec.errors import DataFormatError
from lucidrec.files import read_jsonl
from lucidrec.lm.cache import canonical_json
from lucidrec.lm.chat.base import ChatModel
from lucidrec.lm.chat.messages import ChatResponse
from lucidrec.lm.config import RecordedChatConfig, chat_config
from lucidrec.lm.errors import RecordNotFoundError


class RecordedChatModel(ChatModel):
    backend = "recorded"
    cacheable = False

    def __init__(self, config: RecordedChatConfig | dict | None = None, response_cache=None, **overrides):
        super().__init__(chat_config(config or "recorded", **overrides), response_cache)
        self.path = Path(self.config.path).expanduser()
        if not self.path.is_file():
            raise DataFormatError(self.path, "recorded answers file not found")
        self.by_key: dict[str, str] = {}
        self.by_messages: dict[str, str] = {}
        self.by_prompt: dict[str, str] = {}
        self._load()
        self._identity = f"{self.path.name}@{hashlib.sha1(self.path.read_bytes()).hexdigest()[:12]}"

    def _load(self) -> None:
        cfg = self.config
        for line_no, record in read_jsonl(self.path):
            if not isinstance(record, dict) or cfg.answer_field not in record:
                raise DataFormatError(self.path, "no answer in this record", line=line_no, field=cfg.answer_field)
            answer = str(record[cfg.answer_field])
            indexed = False
            for index, field, value in (
                (self.by_key, cfg.key_field, record.get(cfg.key_field) if cfg.key_field else None),
                (self.by_messages, cfg.messages_field, record.get(cfg.messages_field)),
                (self.by_prompt, cfg.prompt_field, record.get(cfg.prompt_field)),
            ):
                if value is None:
                    continue
                lookup = canonical_json(value) if index is self.by_messages else str(value)
                if index.get(lookup, answer) != answer:
                    raise DataFormatError(self.path, f"a second, different answer for {lookup[:60]!r}",
                                          line=line_no, field=field)
                index[lookup] = answer
                indexed = True
            if not indexed:
                fields = [f for f in (cfg.key_field, cfg.messages_field, cfg.prompt_field) if f]
                raise DataFormatError(self.path, f"record has none of the lookup fields {fields}", line=line_no)

    @property
    def model_id(self) -> str:
        return self._identity

    def __len__(self) -> int:
        return max(len(self.by_key), len(self.by_messages), len(self.by_prompt))

    def _lookup(self, request) -> str:
        if request.key is not None:
            if not self.config.key_field:
                raise RecordNotFoundError(f"request has key {request.key!r} but {self.path} is not keyed "
                                          "(set key_field=..., e.g. 'user_id')")
            if request.key in self.by_key:
                return self.by_key[request.key]
            raise RecordNotFoundError(f"no recorded answer for {self.config.key_field}={request.key!r} in {self.path}")
        found = self.by_messages.get(canonical_json(request.messages))
        if found is None:
            found = self.by_prompt.get(request.last_user_message())
        if found is None:
            raise RecordNotFoundError(f"no recorded answer for this prompt in {self.path} "
                                      f"(last user message: {request.last_user_message()[:80]!r})")
        return found

    def _generate(self, requests, progress):
        out = []
        for request in requests:
            try:
                out.append(ChatResponse(text=self._lookup(request), model=self.model_id))
            except RecordNotFoundError as exc:
                out.append(ChatResponse.failure(exc))
            progress(1)
        return out
