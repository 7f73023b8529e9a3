"""Reading LaMP questions and outputs files into validated `LaMPQuestion` records.

Every problem is reported as a `LaMPDataError` that names the file, the record (index and id)
and the field, before anything downstream is built from the data.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamp_pl.errors import LaMPError, MissingDataError
from lamp_pl.tasks import Task, get_task

SPLITS = ("train", "dev", "test")


class LaMPDataError(LaMPError, ValueError):
    """Bad LaMP input: the message names the file, the record and the field."""

    def __init__(
        self, path: str | Path, message: str, index: int | None = None, record_id: Any = None, field: str | None = None
    ) -> None:
        where = [str(path)]
        if index is not None:
            where.append(f"record {index}" + (f" (id {record_id!r})" if record_id is not None else ""))
        if field is not None:
            where.append(f"field {field!r}")
        super().__init__(f"{', '.join(where)}: {message}")


@dataclass(slots=True)
class LaMPQuestion:
    """One question of a split, joined with its gold output when the split has one."""

    id: str
    input: str
    profile: list[dict]
    output: str | None = None
    user_id: str | None = None

    @property
    def user(self) -> str:
        """Whose profile this is: the time-based splits name users, user-based ones do not, and
        there each question carries its own user's profile."""
        return self.user_id if self.user_id is not None else self.id


def task_folder(data_dir: str | Path, task: Task) -> Path:
    """`<root>/<task>` when it exists, else `data_dir` itself (pointed straight at a task)."""
    root = Path(data_dir)
    return root / task.name if (root / task.name).is_dir() else root


def split_files(data_dir: str | Path, task: str | Task, split: str) -> tuple[Path, Path | None]:
    """Locate a split's questions file and (if present) outputs file.

    Both layouts users have on disk are accepted: `<root>/<task>/<split>_questions.json` and the
    download layout `<root>/<task>/<split>/<split>_questions.json`.
    """
    task = get_task(task)
    folder = task_folder(data_dir, task)
    for base in (folder, folder / split):
        found = [base / f"{split}_questions{ext}" for ext in (".json", ".jsonl")]
        found = [path for path in found if path.is_file()]
        if found:
            outputs = [o for o in (base / f"{split}_outputs{e}" for e in (".json", ".jsonl")) if o.is_file()]
            for candidates in (found, outputs):
                if len(candidates) > 1:
                    raise LaMPDataError(
                        candidates[0],
                        f"two candidate files for the {split!r} split: {candidates[0]} and {candidates[1]}; "
                        "keep one of them",
                    )
            return found[0], next(iter(outputs), None)
    raise MissingDataError(
        f"no {split}_questions.json for {task.name} under {folder} "
        f"(looked for {folder}/{split}_questions.json and {folder}/{split}/{split}_questions.json)"
    )


def available_splits(data_dir: str | Path, task: str | Task) -> list[str]:
    """The standard splits that have a questions file."""
    found = []
    for split in SPLITS:
        try:
            split_files(data_dir, task, split)
            found.append(split)
        except FileNotFoundError:
            pass
    return found


def _decode(path: Path, data: bytes) -> str:
    """The UTF-8 text of a data file (a UTF-8 byte-order mark is allowed), or an error naming it."""
    if data[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise LaMPDataError(
            path, "the file is UTF-16; LaMP files are UTF-8 (convert it, e.g. `iconv -f UTF-16 -t UTF-8`)"
        )
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        raise LaMPDataError(
            path, f"not UTF-8 text (byte {data[error.start]:#04x} at offset {error.start}); LaMP files are UTF-8"
        ) from None


def _parse(path: Path, text: str, line: int | None = None) -> Any:
    where = f" on line {line}" if line is not None else ""
    try:
        return json.loads(text)
    except RecursionError:  # json's parser recurses once per nesting level
        raise LaMPDataError(
            path, f"JSON nested too deeply{where} (no LaMP record nests more than a few levels)"
        ) from None


def read_json(path: str | Path) -> Any:
    """Parse a JSON document, or JSON Lines (LaMP-3's train file), naming the file on failure.

    Raises:
        LaMPDataError: not UTF-8, not JSON nor JSON Lines, or absurdly nested.
    """
    path = Path(path)
    text = _decode(path, path.read_bytes())
    try:
        return _parse(path, text)
    except json.JSONDecodeError as whole_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise LaMPDataError(path, f"malformed JSON: {whole_error}") from None
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(_parse(path, line, number))
            except json.JSONDecodeError as error:
                if number == 1:  # not JSON Lines either: the whole-document error has the true position
                    raise LaMPDataError(path, f"malformed JSON: {whole_error}") from None
                raise LaMPDataError(path, f"malformed JSON on line {number}: {error}") from None
        return records


def _number(value: Any) -> float | None:
    """`value` as a finite number (JSON number or numeric string), else None."""
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _describe(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return type(value).__name__


def _text_field(
    path: Path, record: dict, index: int, name: str, record_id: Any = None, label: str | None = None
) -> str:
    """A field that must hold text (ids, outputs and scores may be finite numbers too)."""
    label = label or name
    if name not in record:
        raise LaMPDataError(path, "missing field", index, record_id, label)
    value = record[name]
    if isinstance(value, int | float) and not isinstance(value, bool) and name in ("id", "output", "score"):
        if not math.isfinite(value):
            raise LaMPDataError(path, f"expected a finite number or a string, got {value}", index, record_id, label)
        return str(value)
    if not isinstance(value, str):
        raise LaMPDataError(path, f"expected a string, got {_describe(value)}", index, record_id, label)
    return value


_STR_ONLY = {str}
MAX_DEPTH = 16
"""Deepest nesting accepted inside a profile item (LaMP's are flat; items are re-encoded as JSON)."""


def _depth(value: Any) -> int:
    """Nesting depth of a JSON value, without recursion (a scalar is 0)."""
    deepest, stack = 0, [(value, 0)]
    while stack:
        node, depth = stack.pop()
        if isinstance(node, dict | list) and depth <= MAX_DEPTH:
            deepest = max(deepest, depth + 1)
            stack.extend((child, depth + 1) for child in (node.values() if isinstance(node, dict) else node))
    return deepest


def _check_rating(path: Path, value: str, task: Task, index: int, record_id: Any, field: str) -> None:
    """A regression task with a label set (LaMP-3's 1..5) takes only those values."""
    number = _number(value)
    if number is None:
        raise LaMPDataError(path, f"{value!r} is not a number", index, record_id, field)
    if task.labels and number not in {float(label) for label in task.labels}:
        raise LaMPDataError(
            path, f"{value!r} is outside {task.name}'s scores ({', '.join(task.labels)})", index, record_id, field
        )


def _check_unique_id(path, profile: list, positions: dict[str, int], position: int, index: int, qid) -> None:
    """Two items of one profile may share an id only when they are the same item."""
    item = profile[position]
    first = positions.setdefault(str(item["id"]), position)
    if first != position and profile[first] != item:
        raise LaMPDataError(
            path,
            f"profile items {first} and {position} share the id {str(item['id'])!r} but differ in content",
            index,
            qid,
            f"profile[{position}].id",
        )


def validate_question(
    path: str | Path, record: Any, index: int, task: Task, profile_checked: bool = False
) -> LaMPQuestion:
    """Validate one record of a questions file (shape and values) into a `LaMPQuestion`.

    Args:
        path: the file, for the message.
        record: the parsed record.
        index: its position in the file.
        profile_checked: this record's profile passed these checks earlier in this process (the
            same file, unchanged): its per-item loop, most of the work on long profiles, is
            skipped. The items are never rewritten, so the question is the same either way.

    Raises:
        LaMPDataError: naming the file, the record (index and id) and the field.
    """
    path = Path(path)
    if not isinstance(record, dict):
        raise LaMPDataError(path, f"expected an object, got {_describe(record)}", index)
    qid = _text_field(path, record, index, "id")
    text = _text_field(path, record, index, "input", qid)
    if task.query(text) is None:
        marker = task.query_marker or "three double-quoted strings"
        raise LaMPDataError(path, f"{task.name} needs {marker!r} in the input to form a query", index, qid, "input")
    profile = record.get("profile")
    if not isinstance(profile, list):
        raise LaMPDataError(path, "missing or not a list", index, qid, "profile")
    if not profile_checked:
        _check_profile(path, profile, index, qid, task)
    user_id = record.get("user_id")
    if user_id is not None and not isinstance(user_id, str | int):
        raise LaMPDataError(path, f"expected a string, got {_describe(user_id)}", index, qid, "user_id")
    return LaMPQuestion(qid, text, profile, None, None if user_id is None else str(user_id))


def _check_profile(path: Path, profile: list, index: int, qid: str, task: Task) -> None:
    """Every profile item: an object with the task's text fields, not nested deeply, ids unique."""
    item_positions: dict[str, int] = {}
    names = {"id", *task.profile_fields}
    checks_ratings = task.metric_kind == "regression"
    for position, item in enumerate(profile):
        # The common case at a glance: a flat object of strings holding every needed field (any
        # other item takes the full checks below, which accept more).
        if (
            type(item) is dict
            and not checks_ratings
            and set(map(type, item.values())) == _STR_ONLY
            and names <= item.keys()
        ):
            _check_unique_id(path, profile, item_positions, position, index, qid)
            continue
        if not isinstance(item, dict):
            raise LaMPDataError(path, f"profile item {position} is not an object", index, qid, "profile")
        missing = task.missing_fields(item)
        if missing:
            raise LaMPDataError(
                path,
                f"profile item {position} (id {item.get('id')!r}) lacks {task.name}'s field",
                index,
                qid,
                f"profile[{position}].{missing[0]}",
            )
        if _depth(item) > MAX_DEPTH:
            raise LaMPDataError(
                path,
                f"profile item {position} is nested more than {MAX_DEPTH} levels deep",
                index,
                qid,
                f"profile[{position}]",
            )
        for name in ("id", *task.profile_fields):
            value = _text_field(path, item, index, name, qid, f"profile[{position}].{name}")
            if task.metric_kind == "regression" and name == task.output_field:
                _check_rating(path, value, task, index, qid, f"profile[{position}].{name}")
        _check_unique_id(path, profile, item_positions, position, index, qid)


def validate_gold(path: str | Path, record: Any, index: int, task: Task) -> tuple[str, str]:
    """Validate one entry of an outputs file's ``golds`` list into (id, output).

    Raises:
        LaMPDataError: naming the file, the record (index and id) and the field.
    """
    path = Path(path)
    if not isinstance(record, dict):
        raise LaMPDataError(path, f"expected an object, got {_describe(record)}", index)
    gid = _text_field(path, record, index, "id")
    output = _text_field(path, record, index, "output", gid)
    if task.metric_kind == "classification" and task.labels and output.strip() not in task.labels:
        raise LaMPDataError(
            path, f"{output!r} is not a {task.name} label (labels: {', '.join(task.labels)})", index, gid, "output"
        )
    if task.metric_kind == "regression":
        _check_rating(path, output, task, index, gid, "output")
    return gid, output


def check_outputs_header(path: str | Path, document: Any, task: Task) -> list:
    """The ``golds`` list of an outputs document, after checking its envelope and task name."""
    path = Path(path)
    if not isinstance(document, dict) or "golds" not in document:
        raise LaMPDataError(path, 'expected {"task": ..., "golds": [...]}', field="golds")
    name = document.get("task")
    if name not in task.accepted_output_names:
        raise LaMPDataError(path, f"outputs are for task {name!r}, not {task.name!r}", field="task")
    if not isinstance(document["golds"], list):
        raise LaMPDataError(path, f"expected a list, got {_describe(document['golds'])}", field="golds")
    return document["golds"]


def _golds(path: Path, document: Any, task: Task) -> dict[str, str]:
    golds: dict[str, str] = {}
    for index, record in enumerate(check_outputs_header(path, document, task)):
        gid, output = validate_gold(path, record, index, task)
        if gid in golds:
            raise LaMPDataError(path, "duplicate id", index, gid, "id")
        golds[gid] = output
    return golds


def read_golds(path: str | Path, task: str | Task) -> dict[str, str]:
    """Read and validate an outputs file on its own (layout, task name, labels, duplicate ids)."""
    return _golds(Path(path), read_json(path), get_task(task))


def load_split(data_dir: str | Path, task: str | Task, split: str) -> list[LaMPQuestion]:
    """Read and validate one split, joining questions with their golds by id.

    Raises:
        FileNotFoundError: the split has no questions file.
        LaMPDataError: anything malformed, naming file, record and field.
    """
    task = get_task(task)
    questions_path, outputs_path = split_files(data_dir, task, split)
    # The outputs file first: its task name tells the wrong dataset apart before any question does.
    golds = None if outputs_path is None else _golds(outputs_path, read_json(outputs_path), task)
    records = read_json(questions_path)
    if isinstance(records, dict) and "input" in records:  # JSON Lines holding a single question
        records = [records]
    if not isinstance(records, list):
        raise LaMPDataError(questions_path, f"expected a JSON list of questions, got {type(records).__name__}")
    questions, seen = [], {}
    for index, record in enumerate(records):
        question = validate_question(questions_path, record, index, task)
        if question.id in seen:
            raise LaMPDataError(
                questions_path, f"duplicate id (first at record {seen[question.id]})", index, question.id, "id"
            )
        seen[question.id] = index
        questions.append(question)
    if not questions:
        raise LaMPDataError(questions_path, "the questions list is empty: nothing to train on, score or predict")
    return join_golds(questions, golds, questions_path, outputs_path)


def join_golds(
    questions: list[LaMPQuestion], golds: dict[str, str] | None, questions_path: Path, outputs_path: Path | None
) -> list[LaMPQuestion]:
    """Set each question's gold output; every question needs one and every gold a question.

    Raises:
        LaMPDataError: a question without a gold, or golds without a question (file, record, id).
    """
    if golds is None:
        return questions
    golds = dict(golds)
    gold_index = {gid: index for index, gid in enumerate(golds)}
    for index, question in enumerate(questions):
        if question.id not in golds:
            raise LaMPDataError(
                questions_path, f"question has no gold output in {outputs_path}", index, question.id, "id"
            )
        question.output = golds.pop(question.id)
    if golds:
        orphan = next(iter(golds))
        raise LaMPDataError(
            outputs_path or questions_path,
            f"{len(golds)} gold id(s) have no question in {questions_path}, e.g. {orphan!r}",
            gold_index[orphan],
            orphan,
            "id",
        )
    return questions
