"""`Task`: everything that differs between tasks lives in one entry of this record.

Query extraction, retrieval text, prompt templates, label sets and the metric are reproduced
from the official LaMP code (github.com/LaMP-Benchmark/LaMP), so that retrieval and prompts are
identical to the benchmark's own scripts. Adding a task is adding one entry: call
`register_task`, or point `task` at a JSON file holding `Task` fields (a custom task).
"""

from __future__ import annotations

import dataclasses
import json
import unicodedata
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from lamp_pl.errors import ConfigError, reading

_LATE_FIELDS = ("max_target_length", "max_new_tokens")
"""Fields hashed into a task's fingerprint only when set, so the LaMP tasks' caches keep their keys."""

SHIPPED: dict[str, Task] = {}
"""The tasks lamp_pl ships (LaMP, LongLaMP, LaMP-QA), by name; filled by `lamp_pl.tasks.registry`."""

MetricKind = Literal["classification", "regression", "generation", "multilabel", "longform"]
"""``longform``: LongLaMP's and LaMP-QA's long targets, scored with ROUGE-1/2/L/Lsum, BLEU and METEOR
(`lamp_pl.metrics.longform`)."""


def quoted_strings(text: str) -> list[str]:
    """Return the double-quoted substrings of `text`, as the official LaMP-1 code scans them."""
    found, current, inside = [], [], False
    for char in text:
        if char == '"':
            if inside:
                found.append("".join(current))
                current = []
            inside = not inside
        elif inside:
            current.append(char)
    return found


def check_plain_name(name: object, what: str = "name") -> str:
    """Return `name` if it is a plain file name, safe to join to a folder; raise otherwise.

    Rejected: non-strings, the empty string, ``.`` and ``..``, path separators (``/`` and ``\\``)
    and control characters, so that no name can point outside the folder it is joined to.
    """
    if not isinstance(name, str) or not name.strip() or name in (".", ".."):
        raise ConfigError(f"{what} {name!r} is not a plain file name (empty, '.' or '..')")
    bad = [c for c in name if c in "/\\" or unicodedata.category(c) == "Cc"]
    if bad:
        raise ConfigError(
            f"{what} {name!r} is not a plain file name: it contains {''.join(sorted(set(bad)))!r} "
            "(path separators and control characters are not allowed)"
        )
    return name


@dataclass(frozen=True)
class Task:
    """Everything task-specific about one LaMP task.

    Prompt templates are `str.format` strings over the profile item's fields plus `{free}`, the
    free text that the prompt builder truncates to fit the token budget.
    """

    name: str
    """Registry name, e.g. ``LaMP_4``."""
    description: str
    """One line for humans."""
    profile_fields: tuple[str, ...]
    """Fields every profile item must have (besides ``id``)."""
    retrieval_fields: tuple[str, ...]
    """Fields joined with a space to form an item's retrieval text."""
    query_marker: str | None
    """The query is the input text after the first occurrence of this marker; None = LaMP-1's
    rule (the 2nd and 3rd double-quoted strings, joined by a space)."""
    metric_kind: MetricKind
    labels: tuple[str, ...] | None = None
    """Closed label set of a classification or rating task; None for free text."""
    free_field: str = "text"
    """The item field that fills ``{free}`` in `item_template` (truncated to the budget)."""
    item_template: str = '"{free}" '
    fixed: str | int | None = None
    """What the official code counts as an item's fixed cost: an explicit template, a constant,
    or None for `item_template` with ``{free}`` replaced by a space."""
    layout: str = "{items}. {input}"
    """How the joined items and the input form the prompt; ``{items}`` inserted after the word
    `insert_after` when that is set (LaMP-1)."""
    insert_after: str | None = None
    share_reserve: int = 1
    """Tokens the official code reserves before dividing the budget among items."""
    budget_suffix: str | None = None
    """Text whose token count the official code also subtracts before dividing the budget."""
    input_field: str | None = None
    """The item field holding what the user was given (for the input-only ablation)."""
    output_field: str | None = None
    """The item field holding what the user produced (for the output-only ablation)."""
    input_only_template: str | None = None
    """Item template of the input-only ablation (``{free}`` = the input field)."""
    output_only_template: str | None = None
    """Item template of the output-only ablation (no free text)."""
    output_task_names: tuple[str, ...] = ()
    """Names an outputs file may carry for this task (defaults to `name`)."""
    max_target_length: int | None = None
    """Preset of the data section's `max_target_length` for this task (long targets); None = 512."""
    max_new_tokens: int | None = None
    """Preset of the model section's `max_new_tokens` for this task (long targets); None = 128."""

    def __post_init__(self) -> None:
        check_plain_name(self.name, "task name")

    @property
    def fingerprint(self) -> str:
        """A hash of every field: two specs that share a name but not their content differ here."""
        from lamp_pl.cache import stable_hash

        fields = dataclasses.asdict(self)
        for late in _LATE_FIELDS:  # hashed only when set, so the LaMP tasks' caches keep their keys
            if fields[late] is None:
                del fields[late]
        return stable_hash(fields)

    @property
    def cache_name(self) -> str:
        """The task's folder under a cache dir: the name for a built-in task, the name plus the
        spec's fingerprint for any other, so two custom specs called alike never share a cache."""
        shipped = SHIPPED.get(self.name)
        return self.name if shipped == self else f"{self.name}-{self.fingerprint[:8]}"

    @property
    def monitor(self) -> str:
        """The metric a checkpoint callback should watch."""
        return {
            "classification": "accuracy",
            "regression": "mae",
            "generation": "rouge-1",
            "multilabel": "f1_macro",
            "longform": "rouge-1",
        }[self.metric_kind]

    @property
    def monitor_mode(self) -> Literal["min", "max"]:
        return "min" if self.metric_kind == "regression" else "max"

    @property
    def accepted_output_names(self) -> tuple[str, ...]:
        return self.output_task_names or (self.name,)

    def query(self, text: str) -> str | None:
        """The retrieval query of an input, or None when the input lacks the task's marker."""
        if self.query_marker is None:
            quoted = quoted_strings(text)
            return f"{quoted[1]} {quoted[2]}".strip() if len(quoted) >= 3 else None
        at = text.find(self.query_marker)
        return text[at + len(self.query_marker) :].strip() if at >= 0 else None

    def item_text(self, item: dict) -> str:
        """The text of a profile item that retrievers encode or index."""
        return " ".join(str(item[f]) for f in self.retrieval_fields)

    def missing_fields(self, item: dict) -> list[str]:
        """Fields the task needs that `item` lacks (``id`` included)."""
        return [f for f in ("id", *self.profile_fields) if f not in item]

    @classmethod
    def from_file(cls, path: str | Path) -> Task:
        """A custom task from a JSON file of `Task` fields (lists become tuples)."""
        with reading(path, "task spec"):
            spec = json.loads(Path(path).read_text(encoding="utf-8"))
        if not isinstance(spec, dict):
            raise ConfigError(f"{path}: a task spec is a JSON object of Task fields")
        names = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(spec) - names)
        if unknown:
            raise ConfigError(f"{path}: unknown task field(s) {unknown}; known: {sorted(names)}")
        try:
            return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec.items()})
        except (TypeError, ValueError) as error:
            raise ConfigError(f"{path}: {error}") from None


__all__ = ["MetricKind", "Task", "check_plain_name", "quoted_strings"]
