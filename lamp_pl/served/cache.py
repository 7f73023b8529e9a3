"""The response cache of a served run: one checksummed JSON line per answer, appended as it arrives.

Each line is ``{"key", "id", "text", "prompt_tokens", "completion_tokens", "check"}``, where `key`
hashes the endpoint, the served model, the generation settings and the prompt, and `check` is the
blake2b digest of the rest of the line. A run killed mid-write leaves at most a torn last line; it
is ignored (and cut off before the next append). Any other damaged line is an error naming the file
and the line, since silently dropping it would pay for that answer again without saying why.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
from pathlib import Path
from typing import IO, Any

from lamp_pl.cache import stable_hash
from lamp_pl.served.settings import Completion, ServedError

logger = logging.getLogger(__name__)


def response_key(settings_fields: dict[str, Any], prompt: str) -> str:
    """The cache key of one request: what shapes the answer, the prompt included."""
    return stable_hash({**settings_fields, "prompt": prompt}, length=32)


def _check(entry: dict[str, Any]) -> str:
    body = json.dumps(entry, sort_keys=True, ensure_ascii=False).encode()
    return hashlib.blake2b(body, digest_size=16).hexdigest()


class ResponseCache:
    """Answers by key, read from and appended to one JSONL file (or kept in memory with no path)."""

    def __init__(self, path: str | Path | None) -> None:
        self.path = Path(path) if path is not None else None
        self.answers: dict[str, Completion] = {}
        self._stream: IO[bytes] | None = None
        if self.path is not None and self.path.exists():
            self._read()

    def _read(self) -> None:
        assert self.path is not None
        data = self.path.read_bytes()
        lines = data.split(b"\n")
        # The last element is b"" when the file ends with a newline; anything else there is torn.
        torn = lines.pop()
        good_size = len(data) - len(torn)
        for number, line in enumerate(lines, start=1):
            try:
                entry = json.loads(line)
                check = entry.pop("check")
                valid = check == _check(entry)
            except (ValueError, KeyError, AttributeError, TypeError):
                valid = False
            if not valid:
                raise ServedError(
                    f"{self.path}: line {number} of the response cache is damaged; delete the file "
                    "(its answers will be requested again) or that line"
                )
            self.answers[entry["key"]] = Completion(
                entry["text"], int(entry["prompt_tokens"]), int(entry["completion_tokens"])
            )
        if torn:
            logger.warning("%s: ignoring a torn last line (a run was stopped while writing)", self.path)
            with open(self.path, "r+b") as stream:
                stream.truncate(good_size)

    def get(self, key: str) -> Completion | None:
        return self.answers.get(key)

    def add(self, key: str, question_id: str, completion: Completion) -> None:
        """Record an answer; with a path it is on disk (flushed and synced) before this returns."""
        self.answers[key] = completion
        if self.path is None:
            return
        entry = {
            "key": key,
            "id": question_id,
            "text": completion.text,
            "prompt_tokens": completion.prompt_tokens,
            "completion_tokens": completion.completion_tokens,
        }
        entry["check"] = _check(entry)
        if self._stream is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._stream = open(self.path, "ab")
        self._stream.write(json.dumps(entry, sort_keys=True, ensure_ascii=False).encode() + b"\n")
        self._stream.flush()
        os.fsync(self._stream.fileno())

    def close(self) -> None:
        if self._stream is not None:
            self._stream.close()
            self._stream = None
