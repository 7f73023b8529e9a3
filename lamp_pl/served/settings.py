"""What a served generator is: the endpoint, the generation settings and the client's policy.

`ServedSettings` is a plain dataclass, so it reads from a config section (`model.served`) and
dumps back to one; it holds the *name* of the environment variable with the API key, never the
key, so no config dump, hyper-parameter file or log can carry a secret.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from typing import Any, Literal

from lamp_pl.errors import LaMPError


class ServedError(LaMPError):
    """A served run that cannot finish: a bad setting, a missing key, unanswered questions."""


@dataclass(frozen=True)
class Completion:
    """One answer of the server and what it cost in tokens (as the server reported them)."""

    text: str
    prompt_tokens: int = 0
    completion_tokens: int = 0
    failed: bool = False
    """True for a question left unanswered and scored as unparseable (`on_failure: unparseable`)."""


@dataclass
class ServedSettings:
    """An OpenAI-compatible endpoint (vLLM, TGI, `transformers serve`, a hosted API) and how to call it."""

    base_url: str = "http://127.0.0.1:8000/v1"
    """Root of the OpenAI-compatible API, ending in `/v1`."""
    model: str = ""
    """The served model's name, as the server lists it (`GET /v1/models`)."""
    api: Literal["completions", "chat"] = "completions"
    """`completions`: the raw prompt (`/v1/completions`); `chat`: the prompt as one user message."""
    system_prompt: str | None = None
    """Chat only: a system message sent before the prompt."""
    max_new_tokens: int = 128
    """Most tokens generated per answer (`max_tokens`)."""
    temperature: float = 0.0
    """0: greedy decoding (reproducible answers)."""
    stop: list[str] | None = None
    """Strings that end an answer."""
    api_key_env: str | None = None
    """Name of the environment variable holding the API key (the key itself is never stored)."""
    max_concurrency: int = 8
    """Most requests in flight at once."""
    requests_per_minute: float | None = None
    """Most requests started per minute (evenly spaced); None: no limit."""
    timeout_s: float = 120.0
    """Seconds one request may take before it is retried."""
    max_retries: int = 6
    """Retries of a request after 429, 5xx, a timeout, a dropped connection or a malformed answer."""
    backoff_s: float = 1.0
    """Retry delay cap of the first retry, doubled each retry up to `max_backoff_s`; the wait is
    drawn between half the cap and the cap (jitter)."""
    max_backoff_s: float = 60.0
    """Longest wait between two tries (a server's `Retry-After` is honoured up to this)."""
    price_prompt_per_million: float = 0.0
    """Price of a million prompt tokens, for the cost in the metrics file (0: no cost reported)."""
    price_completion_per_million: float = 0.0
    """Price of a million completion tokens."""
    on_failure: Literal["error", "unparseable"] = "error"
    """`error`: a run with unanswered questions ends with an error (rerun to send only those);
    `unparseable`: they are scored as unparseable outputs and counted in the metrics file."""
    dry_run: bool = False
    """Print the plan (requests, prompt tokens, cost of the prompts) and stop before sending anything."""

    def __post_init__(self) -> None:
        if self.stop is not None:
            self.stop = list(self.stop)

    def check(self) -> ServedSettings:
        """Refuse a setting no run can use (one `ServedError` naming the field and value).

        Not done on construction: the command line's parser builds this class while parsing and
        would bury the message in its own; the family and `complete_all` call this before any use.
        """
        if not self.model:
            raise ServedError("model.served.model: name the served model (as the server lists it)")
        if self.api not in ("completions", "chat"):
            raise ServedError(f"model.served.api: {self.api!r} is neither 'completions' nor 'chat'")
        if self.max_concurrency < 1:
            raise ServedError(f"model.served.max_concurrency: {self.max_concurrency} must be at least 1")
        if self.requests_per_minute is not None and self.requests_per_minute <= 0:
            raise ServedError(f"model.served.requests_per_minute: {self.requests_per_minute} must be positive")
        if self.on_failure not in ("error", "unparseable"):
            raise ServedError(f"model.served.on_failure: {self.on_failure!r} is neither 'error' nor 'unparseable'")
        if self.timeout_s <= 0:
            raise ServedError(f"model.served.timeout_s: {self.timeout_s} must be positive")
        for name in ("max_new_tokens", "max_retries", "backoff_s", "max_backoff_s"):
            if getattr(self, name) < 0:
                raise ServedError(f"model.served.{name}: {getattr(self, name)} must not be negative")
        return self

    @classmethod
    def from_any(cls, value: ServedSettings | dict[str, Any]) -> ServedSettings:
        """The settings from a config section (a dict, e.g. from saved hyper-parameters) or as given, checked."""
        if isinstance(value, ServedSettings):
            return value.check()
        unknown = sorted(set(value) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ServedError(f"model.served: unknown field(s) {unknown}")
        return cls(**value).check()

    def api_key(self) -> str:
        """The key from the environment variable `api_key_env` (a placeholder for keyless local servers)."""
        if self.api_key_env is None:
            return "EMPTY"
        key = os.environ.get(self.api_key_env)
        if not key:
            raise ServedError(f"model.served.api_key_env: environment variable {self.api_key_env} is not set")
        return key

    def cache_fields(self) -> dict[str, Any]:
        """What shapes an answer besides the prompt: the key of the response cache (no secrets)."""
        return {
            "base_url": self.base_url.rstrip("/"),
            "model": self.model,
            "api": self.api,
            "system_prompt": self.system_prompt,
            "max_new_tokens": self.max_new_tokens,
            "temperature": self.temperature,
            "stop": self.stop,
        }

    def cost(self, prompt_tokens: int, completion_tokens: int) -> float:
        """The price of these tokens at this endpoint's prices per million."""
        return (
            prompt_tokens * self.price_prompt_per_million + completion_tokens * self.price_completion_per_million
        ) / 1e6
