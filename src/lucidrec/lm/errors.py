"""Errors of the language-model layer; each message says what to do next."""

from __future__ import annotations

from lucidrec.errors import LucidrecError


class LMError(LucidrecError):
    """Base class of the errors raised by :mod:`lucidrec.lm`."""


class ModelNotFoundError(LMError, FileNotFoundError):
    """A model is neither at the given path nor installed / cached locally."""

    def __init__(self, what: str, name: str, reason: str, install_hint: str | None = None):
        self.name = name
        self.install_hint = install_hint
        message = f"{what} '{name}' not found: {reason}"
        if install_hint:
            message += f". {install_hint}"
        super().__init__(message)

    def __str__(self) -> str:
        return self.args[0]


class MissingAPIKeyError(LMError):
    """An HTTP backend needs an API key and none was configured."""

    def __init__(self, env_var: str, base_url: str):
        self.env_var = env_var
        super().__init__(
            f"no API key for {base_url}: set the environment variable {env_var} "
            f"(or pass api_key=..., or choose another variable with api_key_env=...)"
        )


class LLMRequestError(LMError):
    """A request to a language model failed (after any retries)."""

    def __init__(self, message: str, *, status: int | None = None, attempts: int = 1, retryable: bool = False,
                 sent: bool = True):
        self.status = status
        self.attempts = attempts
        self.retryable = retryable
        self.sent = sent  # False: never sent (the endpoint had been given up), so no model call to count
        super().__init__(message)


class LLMResponseError(LLMRequestError):
    """The server answered, but not with a well-formed chat completion."""


class ContextLengthError(LMError, ValueError):
    """A prompt (plus the tokens to generate) does not fit the model's context window."""


class RecordNotFoundError(LMError, KeyError):
    """The recorded backend holds no answer for a request."""

    def __str__(self) -> str:
        return self.args[0]


class StructuredOutputError(LMError, ValueError):
    """An answer could not be parsed as JSON or did not validate against the schema."""


class EmptyTextError(LMError, ValueError):
    """Texts to encode are empty strings."""
