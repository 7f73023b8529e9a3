"""Reading LaMP questions and outputs files into validated `LaMPQuestion` records.

Every problem is reported as a `LaMPDataError` that names the file, the record (index and id)
and the field, before anything downstream is built from the data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamp_pl.tasks import Task, get_task

SPLITS = ("train", "dev", "test")


class LaMPDataError(ValueError):
    """Bad LaMP input: the message names the file, the record and the field."""

    def __init__(self, path: str | Path, message: str, index: int | None = None, record_id: Any = None,
                 field: str | None = None) -> None:
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
    folder = task_folder(data_dir, get_task(task))
    for base in (folder, folder / split):
        for ext in (".json", ".jsonl"):
            questions = base / f"{split}_questions{ext}"
            if questions.is_file():
                outputs = [base / f"{split}_outputs{e}" for e in (".json", ".jsonl")]
                return questions, next((o for o in outputs if o.is_file()), None)
    raise FileNotFoundError(
        f"no {split}_questions.json for {get_task(task).name} under {folder} "
        f"(looked for {folder}/{split}_questions.json and {folder}/{split}/{split}_questions.json)")


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


def _read_json(path: Path) -> Any:
    """Parse a JSON document, or JSON Lines (LaMP-3's train file), naming the file on failure."""
    text = path.read_text(encoding="utf-8")
    try:
        return json.loads(text)
    except json.JSONDecodeError as whole_error:
        lines = [line for line in text.splitlines() if line.strip()]
        if len(lines) < 2:
            raise LaMPDataError(path, f"malformed JSON: {whole_error}") from None
        records = []
        for number, line in enumerate(lines, 1):
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError as error:
                if number == 1:  # not JSON Lines either: the whole-document error has the true position
                    raise LaMPDataError(path, f"malformed JSON: {whole_error}") from None
                raise LaMPDataError(path, f"malformed JSON on line {number}: {error}") from None
        return records


def _text_field(path: Path, record: dict, index: int, name: str, record_id: Any = None) -> str:
    if name not in record:
        raise LaMPDataError(path, "missing field", index, record_id, name)
    value = record[name]
    if isinstance(value, int | float) and not isinstance(value, bool) and name in ("id", "output", "score"):
        return str(value)
    if not isinstance(value, str):
        raise LaMPDataError(path, f"expected a string, got {type(value).__name__}", index, record_id, name)
    return value


def _question(path: Path, record: Any, index: int, task: Task) -> LaMPQuestion:
    if not isinstance(record, dict):
        raise LaMPDataError(path, f"expected an object, got {type(record).__name__}", index)
    qid = _text_field(path, record, index, "id")
    text = _text_field(path, record, index, "input", qid)
    if task.query(text) is None:
        marker = task.query_marker or "three double-quoted strings"
        raise LaMPDataError(path, f"{task.name} needs {marker!r} in the input to form a query", index, qid, "input")
    profile = record.get("profile")
    if not isinstance(profile, list):
        raise LaMPDataError(path, "missing or not a list", index, qid, "profile")
    for position, item in enumerate(profile):
        if not isinstance(item, dict):
            raise LaMPDataError(path, f"profile item {position} is not an object", index, qid, "profile")
        missing = task.missing_fields(item)
        if missing:
            raise LaMPDataError(path, f"profile item {position} (id {item.get('id')!r}) lacks {task.name}'s field",
                                index, qid, f"profile[{position}].{missing[0]}")
    user_id = record.get("user_id")
    return LaMPQuestion(qid, text, profile, None, None if user_id is None else str(user_id))


def _golds(path: Path, document: Any, task: Task) -> dict[str, str]:
    if not isinstance(document, dict) or "golds" not in document:
        raise LaMPDataError(path, 'expected {"task": ..., "golds": [...]}', field="golds")
    name = document.get("task")
    if name not in task.accepted_output_names:
        raise LaMPDataError(path, f"outputs are for task {name!r}, not {task.name!r}", field="task")
    golds: dict[str, str] = {}
    for index, record in enumerate(document["golds"]):
        if not isinstance(record, dict):
            raise LaMPDataError(path, "expected an object", index)
        gid = _text_field(path, record, index, "id")
        output = _text_field(path, record, index, "output", gid)
        if gid in golds:
            raise LaMPDataError(path, "duplicate id", index, gid, "id")
        if task.metric_kind == "classification" and task.labels and output.strip() not in task.labels:
            raise LaMPDataError(path, f"{output!r} is not a {task.name} label (labels: {', '.join(task.labels)})",
                                index, gid, "output")
        if task.metric_kind == "regression":
            try:
                float(output)
            except ValueError:
                raise LaMPDataError(path, f"{output!r} is not a number", index, gid, "output") from None
        golds[gid] = output
    return golds


def load_split(data_dir: str | Path, task: str | Task, split: str) -> list[LaMPQuestion]:
    """Read and validate one split, joining questions with their golds by id.

    Raises:
        FileNotFoundError: the split has no questions file.
        LaMPDataError: anything malformed, naming file, record and field.
    """
    task = get_task(task)
    questions_path, outputs_path = split_files(data_dir, task, split)
    # The outputs file first: its task name tells the wrong dataset apart before any question does.
    golds = None if outputs_path is None else _golds(outputs_path, _read_json(outputs_path), task)
    records = _read_json(questions_path)
    if not isinstance(records, list):
        raise LaMPDataError(questions_path, f"expected a JSON list of questions, got {type(records).__name__}")
    questions, seen = [], {}
    for index, record in enumerate(records):
        question = _question(questions_path, record, index, task)
        if question.id in seen:
            raise LaMPDataError(questions_path, f"duplicate id (first at record {seen[question.id]})", index,
                                question.id, "id")
        seen[question.id] = index
        questions.append(question)
    if golds is None:
        return questions
    gold_index = {gid: index for index, gid in enumerate(golds)}
    for index, question in enumerate(questions):
        if question.id not in golds:
            raise LaMPDataError(questions_path, f"question has no gold output in {outputs_path}",
                                index, question.id, "id")
        question.output = golds.pop(question.id)
    if golds:
        orphan = next(iter(golds))
        raise LaMPDataError(outputs_path, f"{len(golds)} gold id(s) have no question in {questions_path}, "
                            f"e.g. {orphan!r}", gold_index[orphan], orphan, "id")
    return questions
