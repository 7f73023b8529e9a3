"""The LongLaMP and LaMP-QA tasks: registry entries and where their data is published.

Both benchmarks are Hugging Face datasets whose records bundle the input, the gold output and the
user's profile (`lamp_pl.data.hub` reads them). What lamp_pl knows of each task:

* **LongLaMP** (``LongLaMP/LongLaMP``; arXiv 2407.11016), one config per task and setting:
  ``abstract_generation_{user,temporal}`` (records ``name, input, output, profile[{abstract, id,
  title, year}]``), ``product_review_{user,temporal}`` (``reviewerId, input, output,
  profile[{description, overall, reviewText, summary}]``, items without ids) and
  ``topic_writing_{user,temporal}`` (``author, input, output, profile[{author, content, id,
  summary}]``); splits ``train``, ``val``, ``test``. Queries, retrieval texts and item templates
  follow the LongLaMP authors' prompt code: abstracts are retrieved by the text after ``items:``
  of the input and by ``title abstract``; reviews by the whole input and by ``overall summary
  description reviewText``; Reddit posts by the whole input and by ``summary content``. Unlike
  that code, which puts whole items in the prompt (no token budget), items are fitted to
  `max_input_length` with LaMP's budget (`lamp_pl.prompts`). Email completion needs the
  non-public Avocado corpus, like LaMP-6, and is not registered (`lamp-pl download` explains).
* **LaMP-QA** (``alireza7/LaMP-QA``; arXiv 2506.00137), configs ``Art_and_Entertainment``,
  ``Lifestyle_and_Personal_Development`` and ``Society_and_Culture``; splits ``train``,
  ``validation``, ``test``; records ``id, question, narrative, rubric_aspects[{aspect, reason,
  evidence}], profile[{id, text}]`` (the profile: the user's past questions with their
  descriptions). The generator reads the question and retrieved past questions; the narrative and
  the aspects are for the LLM judge only (`lamp_pl.evaluation.judge`). The item template and layout are
  lamp_pl's own (the benchmark prompts an instruction-tuned LLM with a chat system prompt instead).
"""

from __future__ import annotations

from dataclasses import dataclass

from lamp_pl.tasks.task import Task


@dataclass(frozen=True)
class HubSource:
    """Where a task's records are published and how their fields map to LaMP's question model."""

    dataset: str
    """Hugging Face dataset name."""
    name: str
    """Its config (subset)."""
    splits: tuple[tuple[str, str], ...]
    """(LaMP split, dataset split) pairs: LaMP's ``dev`` is LongLaMP's ``val``."""
    input_field: str = "input"
    output_field: str = "output"
    """The gold output; a split without this column has no golds (scored by the judge only)."""
    user_field: str | None = None
    """The record field naming the user (None: each question is its own user)."""
    id_field: str | None = None
    """The record id (None: the record's position in its split)."""
    judge_fields: tuple[str, ...] = ()
    """Fields kept beside the questions for the LLM judge (LaMP-QA's narrative and aspects)."""
    number_fields: tuple[str, ...] = ()
    """Profile fields published as numbers (LongLaMP's ``overall`` rating), written as text."""


LONGLAMP = "LongLaMP/LongLaMP"
LAMP_QA = "alireza7/LaMP-QA"
_LONGLAMP_SPLITS = (("train", "train"), ("dev", "val"), ("test", "test"))
_QA_SPLITS = (("train", "train"), ("dev", "validation"), ("test", "test"))
_PATTERNS = "Following the given patterns"
_ABSTRACT_SUFFIX = "Use the above abstracts as context to understand the style and language of the user and,"
QA_CATEGORIES = ("Art_and_Entertainment", "Lifestyle_and_Personal_Development", "Society_and_Culture")

_TASKS: list[Task] = []
SOURCES: dict[str, HubSource] = {}
"""Task name -> its published data."""


def _add(task: Task, source: HubSource) -> None:
    _TASKS.append(task)
    SOURCES[task.name] = source


for _setting in ("user", "temporal"):
    _add(
        Task(
            f"LongLaMP_abstract_generation_{_setting}",
            f"LongLaMP personalized abstract generation ({_setting}-based split)",
            ("title", "abstract"),
            ("title", "abstract"),
            "items:",
            "longform",
            free_field="abstract",
            item_template='"{free}" is the abstract for the title "{title}"',
            layout="{items}. " + _ABSTRACT_SUFFIX + " {input}",
            budget_suffix=_ABSTRACT_SUFFIX,
            input_field="title",
            output_field="abstract",
            input_only_template='the title "{free}" ',
            output_only_template='"{abstract}" is an abstract ',
            max_target_length=512,
            max_new_tokens=512,
        ),
        HubSource(LONGLAMP, f"abstract_generation_{_setting}", _LONGLAMP_SPLITS, user_field="name"),
    )
    _add(
        Task(
            f"LongLaMP_product_review_{_setting}",
            f"LongLaMP personalized product review writing ({_setting}-based split)",
            ("overall", "summary", "description", "reviewText"),
            ("overall", "summary", "description", "reviewText"),
            "",
            "longform",
            free_field="reviewText",
            item_template=(
                '"{overall}" is a rating for the product with description "{description}". '
                '"{summary}" is summary for "{free}" '
            ),
            layout="{items}. " + _PATTERNS + " {input}",
            budget_suffix=_PATTERNS,
            input_field="description",
            output_field="reviewText",
            input_only_template='the product with description "{free}" ',
            output_only_template='"{reviewText}" is a review ',
            max_target_length=512,
            max_new_tokens=512,
        ),
        HubSource(
            LONGLAMP,
            f"product_review_{_setting}",
            _LONGLAMP_SPLITS,
            user_field="reviewerId",
            number_fields=("overall",),
        ),
    )
    _add(
        Task(
            f"LongLaMP_topic_writing_{_setting}",
            f"LongLaMP personalized topic writing: Reddit posts ({_setting}-based split)",
            ("summary", "content"),
            ("summary", "content"),
            "",
            "longform",
            free_field="content",
            item_template='"{summary}" is a summary for "{free}" ',
            layout="{items}. " + _PATTERNS + ", {input}",
            budget_suffix=_PATTERNS + ",",
            input_field="summary",
            output_field="content",
            input_only_template='the summary "{free}" ',
            output_only_template='"{content}" is a post ',
            max_target_length=768,
            max_new_tokens=768,
        ),
        HubSource(LONGLAMP, f"topic_writing_{_setting}", _LONGLAMP_SPLITS, user_field="author"),
    )

_QA_LAYOUT_WORDS = "are questions this user asked before. Answer this question of theirs:"
for _category in QA_CATEGORIES:
    _add(
        Task(
            f"LaMP_QA_{_category}",
            f"LaMP-QA personalized long-form question answering: {_category.replace('_', ' ')}",
            ("text",),
            ("text",),
            "",
            "longform",
            item_template='"{free}" ',
            fixed='"" ',
            layout="{items} " + _QA_LAYOUT_WORDS + " {input}",
            budget_suffix=_QA_LAYOUT_WORDS,
            output_field="text",
            output_only_template='"{text}" ',
            max_target_length=512,
            max_new_tokens=512,
        ),
        HubSource(
            LAMP_QA,
            _category,
            _QA_SPLITS,
            input_field="question",
            output_field="expected_output",
            id_field="id",
            judge_fields=("question", "narrative", "rubric_aspects"),
        ),
    )


LONGFORM_TASKS: tuple[Task, ...] = tuple(_TASKS)
"""The LongLaMP and LaMP-QA tasks, registered by `lamp_pl.tasks.registry` when first asked for."""


def source_of(task_name: str) -> HubSource | None:
    """The published data of a LongLaMP / LaMP-QA task; None for any other task."""
    return SOURCES.get(task_name)


__all__ = ["LAMP_QA", "LONGFORM_TASKS", "LONGLAMP", "QA_CATEGORIES", "SOURCES", "HubSource", "source_of"]
