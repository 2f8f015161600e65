"""Typed settings of the language-model layer, one model per component, defaults next to the class.

Every config forbids unknown keys, so a typo in a run file fails loudly instead of being ignored.
Chat backends are chosen by the ``backend`` field; :data:`CHAT_CONFIGS` is the explicit registry.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lucidrec.errors import UnknownNameError
from lucidrec.settings import user_cache_dir

DEFAULT_ENCODER = "all-MiniLM-L6-v2"
DEFAULT_CHAT_MODEL = "SmolLM2-135M-Instruct"
BASE_URL_ENV = "LUCIDREC_LLM_BASE_URL"
MODEL_ENV = "LUCIDREC_LLM_MODEL"
API_KEY_ENV = "OPENAI_API_KEY"


class CacheConfig(BaseModel):
    """Where cached vectors and answers live; ``dir=None`` means ``user_cache_dir()``."""

    model_config = ConfigDict(extra="forbid")

    dir: Path | None = Field(None, description="cache root; vectors go to <dir>/vectors, answers to <dir>/llm")
    enabled: bool = Field(True, description="read and write the cache (False: always call the model)")

    def root(self) -> Path:
        return Path(self.dir).expanduser() if self.dir else user_cache_dir()


class EncoderConfig(BaseModel):
    """A sentence-transformers encoder and how texts are fed to it."""

    model_config = ConfigDict(extra="forbid")

    model: str = Field(DEFAULT_ENCODER, description="Hugging Face id or local folder")
    batch_size: int = Field(64, ge=1)
    device: str = "cpu"
    max_seq_length: int | None = Field(None, ge=8, description="word pieces kept per text (None: model default)")
    show_progress: bool = True
    empty_text: Literal["error", "zero", "encode"] = Field(
        "error", description="empty strings: raise, give a zero row, or encode them as they are"
    )
    cache: CacheConfig = Field(default_factory=CacheConfig)


class SamplingParams(BaseModel):
    """Decoding settings; all of them are part of the response-cache key."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    max_tokens: int = Field(256, ge=1)
    temperature: float = Field(0.0, ge=0.0, description="0 = greedy, reproducible")
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    stop: tuple[str, ...] | None = None
    seed: int | None = None
    top_logprobs: int | None = Field(None, ge=0, le=20, description="return per-token log-probabilities (top-k)")


class ChatConfigBase(BaseModel):
    model_config = ConfigDict(extra="forbid")

    backend: str
    sampling: SamplingParams = Field(default_factory=SamplingParams)
    cache: CacheConfig = Field(default_factory=CacheConfig)
    price_per_1k_prompt: float = Field(0.0, ge=0.0, description="currency units per 1k prompt tokens")
    price_per_1k_completion: float = Field(0.0, ge=0.0)
    show_progress: bool = Field(True, description="progress bar and a usage line after each batch")


class OpenAIChatConfig(ChatConfigBase):
    """Any OpenAI-compatible chat-completions server: OpenAI, vLLM, Ollama, llama.cpp server, ..."""

    backend: Literal["openai"] = "openai"
    model: str | None = Field(None, description=f"model name; default ${MODEL_ENV}")
    base_url: str | None = Field(None, description=f"e.g. http://localhost:8000/v1; default ${BASE_URL_ENV}, else OpenAI")
    api_key: SecretStr | None = Field(None, exclude=True, repr=False, description="prefer the environment variable")
    api_key_env: str = API_KEY_ENV
    timeout: float = Field(60.0, gt=0, description="seconds per attempt")
    max_retries: int = Field(4, ge=0, description="retries after the first attempt (429, 5xx, connection errors)")
    backoff_base: float = Field(1.0, ge=0, description="first back-off in seconds; doubles each retry, with jitter")
    backoff_max: float = Field(30.0, ge=0)
    concurrency: int = Field(4, ge=1, description="requests in flight at once")
    give_up_after: int = Field(8, ge=0, description="after this many requests in a row failed with all their "
                               "retries, the endpoint is taken as down: the model object's remaining requests "
                               "fail at once (0 = never)")
    requests_per_minute: float | None = Field(None, gt=0, description="space out request starts (hosted API limits)")

    def resolved_base_url(self) -> str | None:
        return self.base_url or os.environ.get(BASE_URL_ENV) or None

    def resolved_model(self) -> str | None:
        return self.model or os.environ.get(MODEL_ENV) or None


class TransformersChatConfig(ChatConfigBase):
    """A causal LM run in-process with transformers (folder, hub id or GGUF file)."""

    backend: Literal["transformers"] = "transformers"
    model: str = Field(DEFAULT_CHAT_MODEL, description="folder, hub id, .gguf file, or the default SmolLM2")
    gguf_file: str | None = Field(None, description="GGUF file name inside `model` (folder or hub repo)")
    device: str = "cpu"
    dtype: Literal["float32", "bfloat16", "float16"] = "float32"
    batch_size: int = Field(16, ge=1, description="prompts per generate() call (left-padded)")
    context_window: int | None = Field(None, ge=16, description="None: the model's max_position_embeddings")
    overflow: Literal["error", "truncate_left"] = Field(
        "error", description="prompt + max_tokens longer than the context: fail that request, or cut the prompt's start"
    )
    convert_gguf: bool = Field(True, description="keep a fast-loading safetensors copy of GGUF models in the cache")
    models_dir: Path | None = Field(None, description="where converted copies go; default user_cache_dir()/models")

    def resolved_models_dir(self) -> Path:
        return Path(self.models_dir).expanduser() if self.models_dir else user_cache_dir() / "models"


class RecordedChatConfig(ChatConfigBase):
    """Answers read from a JSONL file of published / previously collected LLM outputs."""

    backend: Literal["recorded"] = "recorded"
    path: Path
    key_field: str | None = Field(None, description="field matched against a request's explicit key, e.g. user_id")
    answer_field: str = Field("answer", description="field holding the answer text, e.g. preference")
    prompt_field: str = Field("prompt", description="field matched against the last user message")
    messages_field: str = Field("messages", description="field matched against the whole message list")


class MockChatConfig(ChatConfigBase):
    """Deterministic answers for tests: echo the last user message, or a fixed text."""

    backend: Literal["mock"] = "mock"
    mode: Literal["echo", "fixed"] = "echo"
    answer: str = ""
    model: str = "mock"


CHAT_CONFIGS: dict[str, type[ChatConfigBase]] = {
    "openai": OpenAIChatConfig,
    "transformers": TransformersChatConfig,
    "recorded": RecordedChatConfig,
    "mock": MockChatConfig,
}


def chat_config(value: ChatConfigBase | dict | str | None = None, **overrides) -> ChatConfigBase:
    """A chat config from an instance, a dict with ``backend``, or a backend name (+ overrides)."""
    if isinstance(value, ChatConfigBase):
        return value.model_copy(update=overrides) if overrides else value
    if value is None:
        value = "transformers"
    data = {"backend": value} if isinstance(value, str) else dict(value)
    data.update(overrides)
    name = data.get("backend")
    if name not in CHAT_CONFIGS:
        raise UnknownNameError("chat backend", str(name), list(CHAT_CONFIGS))
    return CHAT_CONFIGS[name].model_validate(data)
