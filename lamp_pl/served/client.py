"""Send many prompts to an OpenAI-compatible endpoint: bounded, rate-limited, retried, cached.

`complete_all` is synchronous to its caller and asynchronous inside (`openai.AsyncOpenAI`): a
semaphore bounds the requests in flight (`max_concurrency`), a limiter spaces their starts
(`requests_per_minute`), and each request is retried with exponential backoff and jitter on
429, 5xx, timeouts, dropped connections and answers that are not completions, honouring the
server's `Retry-After`. The openai client's own retries are off, so this is the only policy.
Every answer is appended to the response cache as it arrives, so a rerun sends only what is
still unanswered.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from lamp_pl.extras import require
from lamp_pl.served.cache import ResponseCache, response_key
from lamp_pl.served.preflight import check_endpoint
from lamp_pl.served.settings import Completion, ServedError, ServedSettings
from lamp_pl.served.usage import Answers, Usage

logger = logging.getLogger(__name__)
RETRY_STATUS = frozenset({408, 409, 425, 429, 500, 502, 503, 504})


class NotACompletion(Exception):
    """The server answered, but not with a completion (no text where one belongs)."""


class RateLimiter:
    """Evenly spaced request starts: at most `per_minute` a minute (None: no limit)."""

    def __init__(self, per_minute: float | None) -> None:
        self.interval = 60.0 / per_minute if per_minute else 0.0
        self._next = 0.0
        self._lock = asyncio.Lock()

    async def wait(self) -> None:
        if not self.interval:
            return
        async with self._lock:
            now = time.monotonic()
            start = max(now, self._next)
            self._next = start + self.interval
        await asyncio.sleep(start - now)


def retry_after(error: BaseException) -> float | None:
    """Seconds a server asked us to wait (`Retry-After` in seconds), if it said."""
    response = getattr(error, "response", None)
    value = response.headers.get("retry-after") if response is not None else None
    try:
        return max(0.0, float(value)) if value is not None else None
    except ValueError:
        return None


def is_retryable(error: BaseException) -> bool:
    """A failure worth another try: throttling, a server error, a timeout, a lost connection, garbage."""
    import openai

    if isinstance(error, openai.APIStatusError):
        # 501 (not implemented) and 505 (HTTP version) are answers of a server that never will.
        return error.status_code in RETRY_STATUS or error.status_code >= 500 and error.status_code not in (501, 505)
    return isinstance(error, (openai.APIConnectionError, openai.APIResponseValidationError, NotACompletion, ValueError))


def _text(response: Any, api: str) -> tuple[str, int, int]:
    """The answer's text and token counts (0 where the server gave none); `NotACompletion` when
    the body is not a completion."""
    choices = getattr(response, "choices", None)
    if not choices:
        raise NotACompletion(f"no choices in the answer ({str(response)[:80]!r})")
    choice = choices[0]
    text = (
        choice.message.content if api == "chat" and getattr(choice, "message", None) else getattr(choice, "text", None)
    )
    if not isinstance(text, str):
        raise NotACompletion(f"no text in the answer ({str(response)[:80]!r})")
    usage = getattr(response, "usage", None)
    return text, int(getattr(usage, "prompt_tokens", 0) or 0), int(getattr(usage, "completion_tokens", 0) or 0)


class Sender:
    """One run's requests: the client, the bound in flight, the limiter and the retry policy."""

    def __init__(self, settings: ServedSettings, usage: Usage, count: Callable[[str], int] | None = None) -> None:
        openai = require("openai", "model.family served")

        self.settings, self.usage, self.count = settings, usage, count
        self.client = openai.AsyncOpenAI(
            api_key=settings.api_key(), base_url=settings.base_url, timeout=settings.timeout_s, max_retries=0
        )
        self.slots = asyncio.Semaphore(settings.max_concurrency)
        self.limiter = RateLimiter(settings.requests_per_minute)

    async def _request(self, prompt: str) -> Completion:
        s = self.settings
        common: dict[str, Any] = {"model": s.model, "max_tokens": s.max_new_tokens, "temperature": s.temperature}
        if s.stop:
            common["stop"] = s.stop
        if s.api == "chat":
            messages: list[Any] = [{"role": "system", "content": s.system_prompt}] if s.system_prompt else []
            messages.append({"role": "user", "content": prompt})
            response = await self.client.chat.completions.create(messages=messages, **common)
        else:
            response = await self.client.completions.create(prompt=prompt, **common)
        text, prompt_tokens, completion_tokens = _text(response, s.api)
        if not prompt_tokens and self.count is not None:  # no `usage` in the answer: count them here
            prompt_tokens, completion_tokens = self.count(prompt), self.count(text)
            self.usage.estimated += 1
        return Completion(text, prompt_tokens, completion_tokens)

    async def complete(self, question_id: str, prompt: str) -> Completion:
        """The answer to one prompt, after as many tries as the policy allows."""
        s = self.settings
        for attempt in range(s.max_retries + 1):
            async with self.slots:
                await self.limiter.wait()
                self.usage.tries += 1
                try:
                    return await self._request(prompt)
                except Exception as error:  # classified below; a bug still surfaces as a failure
                    failure = error
            if not is_retryable(failure) or attempt == s.max_retries:
                break
            cap = min(s.max_backoff_s, s.backoff_s * 2**attempt)
            delay = cap / 2 + random.uniform(0, cap / 2)  # "equal jitter": spread out, never ~0
            asked = retry_after(failure)
            if asked is not None:
                delay = max(delay, min(asked, s.max_backoff_s))
            logger.info("question %s: %s; retry %d in %.2fs", question_id, _describe(failure), attempt + 1, delay)
            await asyncio.sleep(delay)
        raise ServedError(f"question {question_id}: {_describe(failure)} (after {attempt + 1} tries)")


def _describe(error: BaseException) -> str:
    status = getattr(error, "status_code", None)
    kind = "not a completion" if isinstance(error, (NotACompletion, ValueError)) else type(error).__name__
    message = " ".join(str(error).split())[:160]
    return f"{kind}{f' (HTTP {status})' if status else ''}: {message}"


async def _complete_all(
    sender_args: tuple[ServedSettings, Usage, Callable[[str], int] | None],
    todo: dict[str, tuple[str, str]],
    cache: ResponseCache,
    progress: bool,
) -> dict[str, str]:
    """Answer every `key: (id, prompt)` of `todo` into `cache`; returns `key: reason` of the failures."""
    from tqdm.auto import tqdm

    sender = Sender(*sender_args)  # made in the loop that runs it (its client and semaphore bind to it)
    failures: dict[str, str] = {}
    bar = tqdm(total=len(todo), desc="served requests", disable=not progress or not todo)

    async def one(key: str, question_id: str, prompt: str) -> None:
        try:
            completion = await sender.complete(question_id, prompt)
            cache.add(key, question_id, completion)
            sender.usage.add_answer(completion)
        except ServedError as error:
            failures[key] = str(error)
            logger.info("%s", error)  # summed up in one line at the end of the run
        bar.update(1)

    try:
        await asyncio.gather(*(one(key, qid, prompt) for key, (qid, prompt) in todo.items()))
    finally:
        bar.close()
        await sender.client.close()
    return failures


def split_prompts(
    settings: ServedSettings, prompts: Mapping[str, str], cache: ResponseCache
) -> tuple[dict[str, str], dict[str, tuple[str, str]], Usage]:
    """The cache key of each question, the requests to send (`key: (first question id, prompt)`:
    one per distinct prompt not in `cache`) and the run's counts so far (questions, duplicates, cached)."""
    fields = settings.cache_fields()
    keys = {qid: response_key(fields, prompt) for qid, prompt in prompts.items()}
    distinct = set(keys.values())
    todo: dict[str, tuple[str, str]] = {}
    for qid, key in keys.items():
        if cache.get(key) is None and key not in todo:
            todo[key] = (qid, prompts[qid])
    usage = Usage(
        questions=len(keys), duplicates=len(keys) - len(distinct), cached=len(distinct) - len(todo), requests=len(todo)
    )
    return keys, todo, usage


def _send(
    settings: ServedSettings,
    todo: dict[str, tuple[str, str]],
    cache: ResponseCache,
    sender_args: tuple[ServedSettings, Usage, Callable[[str], int] | None],
    progress: bool,
) -> dict[str, str]:
    """Send `todo` after a look at the endpoint; when `/models` gave no JSON, one request goes alone
    first, so a server that is no OpenAI-compatible API ends the run after one request, not all."""
    doubt = check_endpoint(settings)
    if doubt:
        probe = dict([next(iter(todo.items()))])
        failures = asyncio.run(_complete_all(sender_args, probe, cache, progress))
        if failures:
            raise ServedError(
                f"model.served.base_url {settings.base_url}: not an OpenAI-compatible API ({doubt}; "
                f"{next(iter(failures.values()))})"
            )
        todo = {key: request for key, request in todo.items() if key not in probe}
    return asyncio.run(_complete_all(sender_args, todo, cache, progress)) if todo else {}


def complete_all(
    settings: ServedSettings,
    prompts: Mapping[str, str],
    cache_path: str | Path | None = None,
    progress: bool = True,
    count: Callable[[str], int] | None = None,
) -> Answers:
    """Answer `prompts` (question id -> prompt text) through the endpoint of `settings`.

    Args:
        settings: Endpoint, generation settings and client policy.
        prompts: The prompt of each question id.
        cache_path: JSONL response cache: answers in it are reused, new ones appended as they arrive.
        progress: Show a progress bar of the requests.
        count: Tokens of a text, for answers whose server reports no `usage` (else counted as 0).

    Returns:
        The completion of every question id (prompts with the same text share one request), with
        the run's `usage`: requests sent, cached answers, duplicate prompts, and the tokens of the
        requests sent (cached answers cost nothing).

    Raises:
        ServedError: No OpenAI-compatible server at `base_url` (before anything is sent), or a
            question still unanswered after its retries (with `on_failure: error`), naming the URL
            and the first and saying how many are unanswered; the answers received are cached.
    """
    settings.check()
    cache = ResponseCache(cache_path)
    keys, todo, usage = split_prompts(settings, prompts, cache)
    logger.info(
        "served: %d questions, %d duplicate prompts, %d cached, %d to request",
        *(usage.questions, usage.duplicates, usage.cached, usage.requests),
    )
    failures: dict[str, str] = {}
    try:
        if todo:
            failures = _send(settings, todo, cache, (settings, usage, count), progress)
    finally:
        cache.close()
    usage.unanswered = len(failures)
    unanswered = [qid for qid, key in keys.items() if key in failures]
    if unanswered:
        first = failures[keys[unanswered[0]]]
        message = f"{len(unanswered)} of {len(prompts)} questions unanswered by {settings.base_url} ({first})"
        if settings.on_failure == "error":
            raise ServedError(
                f"{message}; the answers received are cached{f' in {cache_path}' if cache_path else ''}, "
                "so a rerun requests only these"
            )
        logger.warning("%s; scored as unparseable", message)
    failed = Completion("", 0, 0, failed=True)
    return Answers({qid: failed if key in failures else cache.answers[key] for qid, key in keys.items()}, usage)
