"""Profile items as training pairs: each task's own question template applied to an item.

A LaMP-4 item ``{text, title}`` becomes the input "Generate a headline for the following article:
<text>" with the output <title>; every LaMP task has a row in `ITEM_EXAMPLES`. Tasks without a
row (custom and per-annotator tasks) reuse the user's own question: its text up to and including
the task's query marker, followed by the item's input field, so the adapter is trained on exactly
the form it is evaluated on.
"""

from __future__ import annotations

from dataclasses import dataclass

from lamp_pl.data.lamp import LaMPQuestion
from lamp_pl.data.synthetic import INPUTS
from lamp_pl.errors import ConfigError
from lamp_pl.tasks import Task


@dataclass(frozen=True)
class ItemExample:
    """How one task's profile item becomes (input, output)."""

    template: str
    """`str.format` over ``{text}`` (the item's `input_field`) and ``{labels}`` (the label set)."""
    input_field: str
    output_field: str


ITEM_EXAMPLES: dict[str, ItemExample] = {
    # LaMP-1 items are the user's papers: the pairing a user's own profile supports is abstract -> title.
    "LaMP_1": ItemExample(INPUTS["LaMP_5"], "abstract", "title"),
    "LaMP_2": ItemExample(INPUTS["LaMP_2"], "description", "tag"),
    "LaMP_2N": ItemExample(INPUTS["LaMP_2N"], "text", "category"),
    "LaMP_3": ItemExample(INPUTS["LaMP_3"], "text", "score"),
    "LaMP_4": ItemExample(INPUTS["LaMP_4"], "text", "title"),
    "LaMP_5": ItemExample(INPUTS["LaMP_5"], "abstract", "title"),
    "LaMP_6": ItemExample(INPUTS["LaMP_6"], "text", "title"),
    # LaMP-7 items hold only the user's tweets: the paraphrase target is the tweet in their style.
    "LaMP_7": ItemExample(INPUTS["LaMP_7"], "text", "text"),
}


def _question_prefix(task: Task, question: LaMPQuestion) -> str:
    marker = task.query_marker or ""
    at = question.input.find(marker) if marker else -1
    if at < 0:
        raise ConfigError(
            f"{task.name}: no ITEM_EXAMPLES row and question {question.id!r} lacks the query marker "
            f"{marker!r}, so its profile items cannot become training pairs"
        )
    return question.input[: at + len(marker)] + " "


def item_to_example(task: Task, item: dict, question: LaMPQuestion) -> tuple[str, str]:
    """The (input, output) training pair of one profile item of `question`'s user."""
    row = ITEM_EXAMPLES.get(task.name)
    if row is not None:
        text = row.template.format(text=item[row.input_field], labels=", ".join(task.labels or ()))
        return text, str(item[row.output_field])
    if task.input_field is None or task.output_field is None:
        raise ConfigError(f"{task.name}: custom tasks need input_field and output_field for per-user adapters")
    return _question_prefix(task, question) + str(item[task.input_field]), str(item[task.output_field])


def user_examples(task: Task, questions: list[LaMPQuestion]) -> dict[str, list[tuple[str, str]]]:
    """Each user's training pairs: the union of their questions' profile items (by item id), minus
    items that are themselves questions of `questions` (their labels are what is evaluated)."""
    asked = {q.id for q in questions}
    pairs: dict[str, dict[str, tuple[str, str]]] = {}
    for question in questions:
        mine = pairs.setdefault(question.user, {})
        for item in question.profile:
            if item["id"] not in asked and item["id"] not in mine:
                mine[item["id"]] = item_to_example(task, item, question)
    return {user: [mine[key] for key in sorted(mine)] for user, mine in pairs.items()}
