"""Per-annotator subjective tasks (GoEmotions, Unhealthy Conversations) converted to LaMP folders.

Each annotator is a user: the question for one (annotator, text) pair asks for *that annotator's*
labels of the text, and its profile holds the annotator's other annotated texts with their labels
(never the question's own text). This is the setting of "Personalized Large Language Models"
(arXiv 2402.09269). The converters read the public raw CSVs (one row per (text, annotator)),
drop unclear examples and annotators with fewer than `min_annotations` rows, split by one of two
protocols, and write `<out>/<task>/<split>_{questions,outputs}.json` plus the custom task spec
`<out>/<task>.json` that `lamp_pl.tasks.get_task` loads.

Split protocols:

* ``known_users``: each annotator's texts are shuffled (seeded per annotator) and split
  70/10/20 into train/dev/test, with at least one text in train, so every annotator is seen in
  training.
* ``held_out_users``: whole annotators are split 70/10/20 (seeded), so dev/test annotators never
  occur in train and the model must personalize from their profile items alone; half of each
  held-out annotator's texts (seeded) are their profile and only the other half are asked.
"""

from __future__ import annotations

import csv
import json
import random
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from lamp_pl.cache import write_text_atomic
from lamp_pl.data.lamp import LaMPDataError
from lamp_pl.errors import ConfigError, reading
from lamp_pl.metrics.multilabel import format_labels

EMOTIONS = (
    "admiration",
    "amusement",
    "anger",
    "annoyance",
    "approval",
    "caring",
    "confusion",
    "curiosity",
    "desire",
    "disappointment",
    "disapproval",
    "disgust",
    "embarrassment",
    "excitement",
    "fear",
    "gratitude",
    "grief",
    "joy",
    "love",
    "nervousness",
    "optimism",
    "pride",
    "realization",
    "relief",
    "remorse",
    "sadness",
    "surprise",
    "neutral",
)
UNHEALTHY_COLUMNS = (
    "antagonize",
    "condescending",
    "dismissive",
    "generalisation",
    "generalisation_unfair",
    "healthy",
    "hostile",
    "sarcastic",
)
ATTRIBUTES = tuple(c for c in UNHEALTHY_COLUMNS if c != "healthy")
PROTOCOLS = ("known_users", "held_out_users")
FRACTIONS = (0.7, 0.1)  # train, dev; test gets the rest


@dataclass(frozen=True)
class RawSchema:
    """Column names of one raw dataset (extra columns are ignored)."""

    text_id: str
    text: str
    annotator: str
    flags: tuple[str, ...]
    """0/1 label columns."""
    unclear: str | None = None
    """A true/false column whose true rows are dropped."""
    other: tuple[str, ...] = ()
    """Further columns the format requires (checked, not used)."""

    @property
    def required(self) -> tuple[str, ...]:
        return (
            self.text,
            self.text_id,
            self.annotator,
            *((self.unclear,) if self.unclear else ()),
            *self.other,
            *self.flags,
        )


GOEMOTIONS = RawSchema("id", "text", "rater_id", EMOTIONS, unclear="example_very_unclear")
UNHEALTHY = RawSchema("_unit_id", "comment", "_worker_id", UNHEALTHY_COLUMNS, other=("_trust",))


@dataclass(frozen=True)
class Annotation:
    annotator: str
    text_id: str
    text: str
    flags: frozenset[str]


@dataclass(frozen=True)
class TaskForm:
    """How one label view of a dataset becomes a LaMP task."""

    name: str
    description: str
    question: str
    """The question's input; ``{text}`` is the annotated text, ``{labels}`` the label set."""
    marker: str
    metric_kind: str
    labels: tuple[str, ...]

    def output(self, flags: frozenset[str]) -> str:
        if self.metric_kind == "multilabel":
            return format_labels(flags & set(self.labels), self.labels)
        return "healthy" if "healthy" in flags else "unhealthy"  # the binary view of Unhealthy

    def spec(self) -> dict:
        """The custom task spec (`lamp_pl.tasks.Task` fields)."""
        return {
            "name": self.name,
            "description": self.description,
            "profile_fields": ["text", "labels"],
            "retrieval_fields": ["text"],
            "query_marker": self.marker,
            "metric_kind": self.metric_kind,
            "labels": list(self.labels),
            "free_field": "text",
            "item_template": '"{free}" is labelled "{labels}" ',
            "input_field": "text",
            "output_field": "labels",
            "input_only_template": 'the text "{free}" ',
            "output_only_template": 'a text labelled "{labels}" ',
        }


_ASK = "Which of these labels does this annotator give the text? Answer with the labels, or none. labels: [{labels}] "
GOEMOTIONS_TASKS = (
    TaskForm(
        "GoEmotions",
        "per-annotator emotions of Reddit comments (multi-label)",
        _ASK + "text: {text}",
        "text:",
        "multilabel",
        EMOTIONS,
    ),
)
UNHEALTHY_TASKS = (
    TaskForm(
        "Unhealthy_healthy",
        "per-annotator healthy/unhealthy comment (binary)",
        "Is this comment healthy or unhealthy in this annotator's view? comment: {text}",
        "comment:",
        "classification",
        ("healthy", "unhealthy"),
    ),
    TaskForm(
        "Unhealthy_attributes",
        "per-annotator unhealthy attributes of a comment (multi-label)",
        _ASK + "comment: {text}",
        "comment:",
        "multilabel",
        ATTRIBUTES,
    ),
)


def _flag(path: Path, line: int, column: str, value: str) -> bool:
    text = str(value).strip().lower()
    if text in ("1", "1.0", "true"):
        return True
    if text in ("0", "0.0", "false", ""):
        return False
    raise LaMPDataError(path, f"line {line}: expected 0/1 or true/false, got {value!r}", field=column)


def read_annotations(paths: Sequence[str | Path], schema: RawSchema) -> tuple[list[Annotation], dict]:
    """Rows of the raw CSVs, unclear rows and repeated (annotator, text) pairs dropped.

    Raises:
        LaMPDataError: A required column is missing, or a 0/1 cell is neither (naming file, line, column).
    """
    annotations, seen, counts = [], set(), {"rows": 0, "dropped_unclear": 0, "dropped_duplicates": 0}
    for path in map(Path, paths):
        with reading(path, "CSV file"), path.open(newline="", encoding="utf-8") as stream:
            reader = csv.DictReader(stream)
            columns = reader.fieldnames or []
            if not columns:
                raise LaMPDataError(path, f"empty: no header row (expected the columns {', '.join(schema.required)})")
            rows_before = counts["rows"]
            for column in schema.required:
                if column not in columns:
                    raise LaMPDataError(
                        path, f"missing required column {column!r} (found: {', '.join(columns)})", field=column
                    )
            for row in reader:
                counts["rows"] += 1
                line = reader.line_num
                if schema.unclear and _flag(path, line, schema.unclear, row[schema.unclear]):
                    counts["dropped_unclear"] += 1
                    continue
                key = (row[schema.annotator].strip(), row[schema.text_id].strip())
                if key in seen:
                    counts["dropped_duplicates"] += 1
                    continue
                seen.add(key)
                flags = frozenset(c for c in schema.flags if _flag(path, line, c, row[c]))
                annotations.append(Annotation(key[0], key[1], row[schema.text], flags))
            if counts["rows"] == rows_before:
                raise LaMPDataError(path, "no data rows: the file holds its header only")
    return annotations, counts


def split_annotations(by_annotator: dict[str, list[Annotation]], protocol: str, seed: int) -> dict[str, list]:
    """Assign annotations to train/dev/test by `protocol` (see the module docstring)."""
    if protocol not in PROTOCOLS:
        raise ConfigError(f"unknown split protocol {protocol!r}; expected one of {PROTOCOLS}")
    splits: dict[str, list[Annotation]] = {"train": [], "dev": [], "test": []}

    def cut(n: int) -> tuple[int, int]:
        train = max(1, round(FRACTIONS[0] * n))
        dev = min(n - train, round(FRACTIONS[1] * n))
        return train, train + dev

    if protocol == "known_users":
        for annotator, rows in sorted(by_annotator.items()):
            rows = sorted(rows, key=lambda a: a.text_id)
            random.Random(f"{seed}:{annotator}").shuffle(rows)
            a, b = cut(len(rows))
            splits["train"] += rows[:a]
            splits["dev"] += rows[a:b]
            splits["test"] += rows[b:]
        return splits
    annotators = sorted(by_annotator)
    random.Random(seed).shuffle(annotators)
    a, b = cut(len(annotators))
    for split, chosen in (("train", annotators[:a]), ("dev", annotators[a:b]), ("test", annotators[b:])):
        splits[split] = [row for annotator in sorted(chosen) for row in by_annotator[annotator]]
    return splits


def _hold_out_support(
    splits: dict[str, list[Annotation]], kept: dict[str, list[Annotation]], seed: int
) -> tuple[dict[str, list[Annotation]], dict[str, list[Annotation]]]:
    """Held-out annotators: half of their texts (seeded) become profile-only support items and
    only the other half are asked, so no profile item of theirs is also a question whose label is
    scored (a per-user adapter trained on the profile would otherwise see test labels)."""
    support = dict(kept)
    for split in ("dev", "test"):
        asked: list[Annotation] = []
        for annotator in sorted({row.annotator for row in splits[split]}):
            rows = sorted(kept[annotator], key=lambda r: r.text_id)
            random.Random(f"{seed}:support:{annotator}").shuffle(rows)
            half = len(rows) // 2
            support[annotator], asked = rows[:half], asked + rows[half:]
        splits[split] = asked
    return splits, support


def _item(form: TaskForm, row: Annotation) -> dict:
    return {"id": f"{row.annotator}-{row.text_id}", "text": row.text, "labels": form.output(row.flags)}


def _write_form(
    out: Path,
    form: TaskForm,
    splits: dict[str, list[Annotation]],
    pools: dict[str, list[Annotation]],
    list_labels: bool,
) -> dict:
    folder = out / form.name
    question = form.question if list_labels else form.question.replace("labels: [{labels}] ", "")
    sizes = {}
    for split, rows in splits.items():
        questions, golds = [], []
        for row in rows:
            item = _item(form, row)
            profile = [_item(form, other) for other in pools[row.annotator] if other.text_id != row.text_id]
            questions.append(
                {
                    "id": item["id"],
                    "user_id": row.annotator,
                    "input": question.format(text=row.text, labels=", ".join(form.labels)),
                    "profile": profile,
                }
            )
            golds.append({"id": item["id"], "output": item["labels"]})
        write_text_atomic(folder / f"{split}_questions.json", json.dumps(questions, indent=1))
        write_text_atomic(folder / f"{split}_outputs.json", json.dumps({"task": form.name, "golds": golds}, indent=1))
        sizes[split] = len(questions)
    spec = write_text_atomic(out / f"{form.name}.json", json.dumps(form.spec(), indent=1))
    return {"spec": str(spec), "folder": str(folder), "questions": sizes}


def convert(
    raw: Sequence[str | Path],
    out: str | Path,
    schema: RawSchema,
    forms: Sequence[TaskForm],
    split: str = "known_users",
    min_annotations: int = 10,
    seed: int = 0,
    max_profile: int = 100,
    list_labels: bool = True,
) -> dict:
    """Read, filter, split and write every task view of one dataset; return the summary."""
    annotations, counts = read_annotations(raw, schema)
    by_annotator: dict[str, list[Annotation]] = defaultdict(list)
    for row in annotations:
        by_annotator[row.annotator].append(row)
    dropped = sorted(a for a, rows in by_annotator.items() if len(rows) < min_annotations)
    kept = {a: rows for a, rows in by_annotator.items() if len(rows) >= min_annotations}
    if not kept:
        raise ConfigError(f"no annotator has {min_annotations} or more annotations in {', '.join(map(str, raw))}")
    splits = split_annotations(kept, split, seed)
    support = dict(kept)
    if split == "held_out_users":
        splits, support = _hold_out_support(splits, kept, seed)
    # Each annotator's profile pool: a seeded sample of at most max_profile + 1 of their rows, so a
    # question's profile (its own text removed) stays bounded on annotators with thousands of rows.
    pools = {
        a: random.Random(f"{seed}:profile:{a}").sample(
            sorted(rows, key=lambda r: r.text_id), min(len(rows), max_profile + 1)
        )
        for a, rows in support.items()
    }
    out = Path(out)
    tasks = {form.name: _write_form(out, form, splits, pools, list_labels) for form in forms}
    return {
        "split": split,
        "seed": seed,
        "min_annotations": min_annotations,
        "max_profile": max_profile,
        **counts,
        "annotations_kept": sum(len(r) for r in kept.values()),
        "annotators_kept": len(kept),
        "dropped_annotators": len(dropped),
        "dropped_annotator_ids": dropped,
        "annotators": {s: len({r.annotator for r in rows}) for s, rows in splits.items()},
        "tasks": tasks,
    }


def convert_goemotions(
    raw: list[Path],
    out: Path,
    split: str = "known_users",
    min_annotations: int = 10,
    seed: int = 0,
    max_profile: int = 100,
    list_labels: bool = True,
) -> dict:
    """GoEmotions raw CSVs (`goemotions_1..3.csv`) -> the multi-label `GoEmotions` task.

    Args:
        raw: The raw CSV files (columns `text`, `id`, `rater_id`, `example_very_unclear`, one 0/1
            column per emotion; others ignored).
        out: Output root: `<out>/GoEmotions/<split>_*.json` and the spec `<out>/GoEmotions.json`.
        split: `known_users` or `held_out_users`.
        min_annotations: Annotators with fewer (clear) annotations are dropped.
        seed: Seeds the splits and the profile samples.
        max_profile: Most profile items per question.
        list_labels: Name the label set in each question's input (off: shorter prompts).

    Returns:
        The summary: rows read, dropped unclear rows / duplicates / annotators, questions per split.
    """
    return convert(raw, out, GOEMOTIONS, GOEMOTIONS_TASKS, split, min_annotations, seed, max_profile, list_labels)


def convert_unhealthy(
    raw: list[Path],
    out: Path,
    split: str = "known_users",
    min_annotations: int = 10,
    seed: int = 0,
    max_profile: int = 100,
    list_labels: bool = True,
) -> dict:
    """Unhealthy Conversations raw CSV -> `Unhealthy_healthy` (binary) and `Unhealthy_attributes`.

    Args:
        raw: The raw CSV file(s) (columns `_unit_id`, `comment`, `_trust`, `_worker_id` and the
            0/1 columns of `UNHEALTHY_COLUMNS`; others ignored).
        out: Output root (one folder and one spec per task).
        split: `known_users` or `held_out_users`.
        min_annotations: Annotators with fewer annotations are dropped.
        seed: Seeds the splits and the profile samples.
        max_profile: Most profile items per question.
        list_labels: Name the label set in each question's input.

    Returns:
        The summary, as `convert_goemotions`.
    """
    return convert(raw, out, UNHEALTHY, UNHEALTHY_TASKS, split, min_annotations, seed, max_profile, list_labels)
