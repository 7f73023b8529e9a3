"""Reading a LaMP questions file record by record, never holding the whole parsed document.

A questions file is either one JSON array of question objects or JSON Lines (LaMP-3's train
file). `iter_records` walks either one with `json.JSONDecoder.raw_decode` over buffered chunks, so
memory holds one record and one chunk, whatever the file's size. `stream_questions` validates
each record as `load_split` does (the same per-record function, so the messages are the same: file,
record, field) and checks that ids are unique; a file it has read whole once in this process, and
that has not changed since, gets its profile items' checks skipped after that. `load_questions` is
`load_split` without the profiles, for the code that needs every question's id, input and gold but
not their profiles.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from lamp_pl.data.lamp import (
    LaMPDataError,
    LaMPQuestion,
    _golds,
    join_golds,
    read_json,
    split_files,
    validate_question,
)
from lamp_pl.tasks import Task, get_task

CHUNK = 1 << 20
"""Characters read at a time."""
MAX_RECORD = 1 << 28
"""A record that does not parse within this many buffered characters is reported malformed, so a
broken file is not read whole into memory on its way to the error."""
_SPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

parse_count = 0
"""Questions files this process has started to stream (tests check who parsed what under DDP)."""


_checked_files: set[tuple] = set()
"""Questions files whose every record this process has validated in full, by `_file_state`: `index`
streams a split up to three times (item tables, rankings, prompts), and on long profiles the
per-item checks were most of a pass (bench/vs_official.py's BM25 ranking: 720 questions of 200-400
items). Only a whole pass adds a file, so a pass stopped early or failed checks it again."""


def _file_state(path: Path, task: Task) -> tuple:
    # The file as it is now and the rules it was checked against: an edited file, even one of the
    # same size within the clock's resolution, changes its inode on an atomic replace or its mtime.
    state = path.stat()
    return (str(path.resolve()), state.st_size, state.st_mtime_ns, state.st_ino, task.fingerprint)


def _validate(path: Path, record: Any, index: int, task: Task, profile_checked: bool = False) -> LaMPQuestion:
    # The one call into lamp_pl.data.lamp's per-record validation, so both readers say the same.
    return validate_question(path, record, index, task, profile_checked)


class _Buffer:
    """A text file's unread tail, with the line count of what was dropped (for error positions)."""

    def __init__(self, stream) -> None:
        self.stream, self.text, self.pos, self.eof = stream, "", 0, False
        self.dropped, self.lines_before, self.last_newline = 0, 0, -1  # of the consumed prefix

    def more(self, at_least: int = CHUNK) -> bool:
        """Read another chunk (dropping the consumed prefix); False at end of file."""
        if self.eof:
            return False
        self.lines_before += self.text.count("\n", 0, self.pos)
        newline = self.text.rfind("\n", 0, self.pos)
        self.last_newline = self.dropped + newline if newline >= 0 else self.last_newline
        self.dropped += self.pos
        chunk = self.stream.read(max(at_least, CHUNK))
        self.text, self.pos = self.text[self.pos :] + chunk, 0
        self.eof = not chunk
        return bool(chunk)

    def skip_space(self) -> str:
        """The next non-blank character (reading on as needed); '' at end of file."""
        while True:
            self.pos = _SPACE.match(self.text, self.pos).end()  # type: ignore[union-attr]  # '*' always matches
            if self.pos < len(self.text):
                return self.text[self.pos]
            if not self.more():
                return ""

    def where(self, pos: int) -> str:
        line = self.lines_before + self.text.count("\n", 0, pos) + 1
        newline = self.text.rfind("\n", 0, pos)
        start = self.dropped + newline if newline >= 0 else self.last_newline
        return f"line {line} column {self.dropped + pos - start} (char {self.dropped + pos})"

    def value(self) -> Any:
        """Decode the JSON value that starts at the cursor, reading on until it is whole."""
        while True:
            try:
                value, end = _DECODER.raw_decode(self.text, self.pos)
                # A number at the buffer's end may continue in the next chunk.
                if end < len(self.text) or self.eof or not isinstance(value, int | float):
                    self.pos = end
                    return value
            except json.JSONDecodeError as error:
                if self.eof or len(self.text) - self.pos > MAX_RECORD:
                    raise ValueError(f"{error.msg}: {self.where(error.pos)}") from None
            self.more(len(self.text) - self.pos)


def iter_records(path: str | Path) -> Iterator[Any]:
    """Yield the records of a JSON array file, or of a JSON Lines file, one at a time.

    Raises:
        LaMPDataError: malformed JSON (with line and column), or a document that is neither.
    """
    path = Path(path)
    try:
        yield from _iter_records(path)
    except UnicodeDecodeError as error:
        raise LaMPDataError(
            path, f"not UTF-8 text ({error.reason} at offset {error.start} of a chunk); LaMP files are UTF-8"
        ) from None
    except RecursionError:  # json's parser recurses once per nesting level
        raise LaMPDataError(path, "JSON nested too deeply (no LaMP record nests more than a few levels)") from None


def _iter_records(path: Path) -> Iterator[Any]:
    with open(path, "rb") as raw:
        if raw.read(2) in (b"\xff\xfe", b"\xfe\xff"):
            raise LaMPDataError(
                path, "the file is UTF-16; LaMP files are UTF-8 (convert it, e.g. `iconv -f UTF-16 -t UTF-8`)"
            )
    with open(path, encoding="utf-8-sig") as stream:
        buffer = _Buffer(stream)
        first = buffer.skip_space()
        if first != "[":
            single = _check_json_lines(path, buffer, first)
            if single is not None:  # JSON Lines holding a single question
                yield single
                return
        else:
            buffer.pos += 1
            char = buffer.skip_space()
            while char != "]":
                try:
                    yield buffer.value()
                except ValueError as error:
                    raise LaMPDataError(path, f"malformed JSON: {error}") from None
                char = buffer.skip_space()
                if char == ",":
                    buffer.pos += 1
                    buffer.skip_space()
                elif char != "]":
                    raise LaMPDataError(path, f"malformed JSON: Expecting ',' delimiter: {buffer.where(buffer.pos)}")
            buffer.pos += 1
            if buffer.skip_space():
                raise LaMPDataError(path, f"malformed JSON: extra data: {buffer.where(buffer.pos)}")
            return
    with open(path, encoding="utf-8-sig") as stream:
        for number, line in enumerate(stream, 1):
            if line.strip():
                try:
                    yield json.loads(line)
                except json.JSONDecodeError as error:
                    raise LaMPDataError(path, f"malformed JSON on line {number}: {error}") from None


def _check_json_lines(path: Path, buffer: _Buffer, first: str) -> Any:
    """Not a list: JSON Lines when a second value follows the first (None is returned: they are
    then read line by line), one question object alone (returned), else a document of the wrong
    shape."""
    if not first:
        raise LaMPDataError(path, "expected a JSON list of questions, got an empty file")
    try:
        value = buffer.value()
    except ValueError as error:
        raise LaMPDataError(path, f"malformed JSON: {error}") from None
    if not buffer.skip_space():
        if isinstance(value, dict) and "input" in value:
            return value
        raise LaMPDataError(path, f"expected a JSON list of questions, got {type(value).__name__}")
    return None


def stream_questions(path: str | Path, task: str | Task) -> Iterator[LaMPQuestion]:
    """Validated questions of one questions file, in file order, one at a time.

    Raises:
        LaMPDataError: a malformed record (file, record and field) or a repeated id; records
            before it have been yielded, so a caller that writes must write to a temporary place.
    """
    global parse_count
    parse_count += 1
    path, task = Path(path), get_task(task)
    state = _file_state(path, task)
    checked = state in _checked_files
    seen: dict[str, int] = {}
    for index, record in enumerate(iter_records(path)):
        question = _validate(path, record, index, task, profile_checked=checked)
        if question.id in seen:
            raise LaMPDataError(path, f"duplicate id (first at record {seen[question.id]})", index, question.id, "id")
        seen[question.id] = index
        yield question
    if not seen:
        raise LaMPDataError(path, "the questions list is empty: nothing to train on, score or predict")
    _checked_files.add(state)


def load_questions(
    data_dir: str | Path, task: str | Task, split: str, *, profiles: bool = False, outputs: bool = True
) -> list[LaMPQuestion]:
    """A split's questions as `load_split` returns them, streamed, by default without profiles.

    Memory holds the questions' ids and inputs (and profiles only with ``profiles=True``), never the
    parsed file, so the retrieval and prompt stages of a million-entry split stay small.
    """
    task = get_task(task)
    questions_path, outputs_path = split_files(data_dir, task, split)
    golds = None if outputs_path is None or not outputs else _golds(outputs_path, read_json(outputs_path), task)
    questions: list[LaMPQuestion] = []
    for question in stream_questions(questions_path, task):
        if not profiles:
            question.profile = []
        questions.append(question)
    return join_golds(questions, golds, questions_path, outputs_path)


__all__ = ["iter_records", "load_questions", "stream_questions"]
