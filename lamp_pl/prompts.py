"""Retrieval-augmented prompts, reproducing the official LaMP prompt builder (`prompts/prompts.py`).

The k retrieved profile items (best first) are rendered with the task's `item_template`, joined
with ``", and "`` and placed around the input as the task's `layout` says (LaMP-1: inserted after
the word "title" of the input). Every task is driven by the same routine and its `Task` fields.

Token budget (the official algorithm; counts include special tokens, e.g. T5's ``</s>``)::

    budget = max_length - min(count(input), int(factor * max_length))   # factor = 0.6, 0.5, ..., 0.0
    share  = (budget - share_reserve - 2 * (k - 1) - count(budget_suffix)) // k
    saved  = 0
    per item: fixed = count(the item's fixed part)
              free text truncated to share + saved - fixed tokens, decoded without special tokens
              saved += share - used - fixed

An attempt fails when an item's truncation length is negative (the official code relies on the
tokenizer raising there: Hugging Face tokenizers raise `OverflowError` for a negative
``max_length``). A truncation length of exactly 0 is where the ``budget`` option matters:
``official`` (default) does what the official code does, which passes ``max_length=0`` to the
tokenizer and Hugging Face reads that as "no truncation", so the *whole* free text goes in (and
the next items' room shrinks by what it overspent); ``strict`` treats 0 as no room and fails the
attempt, so a prompt never holds an item that overspent its share. A failed attempt is retried with the factor lowered by 0.1 (counted in
integer tenths, so no float drift); after factor 0 the bare input is returned. A lower factor
reserves less for a long input, so the items get more room and the prompt may then exceed
`max_length`: the generator's truncation cuts its end (the input), as in the official runs.
k = 0 gives the bare input, as the official code does (its division by zero fails every attempt).
Unlike the official bare ``except``, only budget failures are retried: a missing item field
raises `KeyError`.

Options of the user-profile study (`PromptOptions`), applied to the retrieved list before budgeting:

* ``order``: ``start`` keeps the retrieved order (best first, farthest from the input); ``end``
  reverses it (best last, next to the input); ``middle`` puts the best item in the centre and
  the next ones alternately left and right of it, outward (ranks 1..5 -> [4, 2, 1, 3, 5],
  ranks 1..4 -> [4, 2, 1, 3]), so the weakest items sit at both ends ("lost in the middle");
  ``random`` shuffles with ``random.Random(f"{seed}:{question_id}")``, deterministic per question.
* ``ablation``: ``both`` = the official templates; ``only_input`` renders each item's input field
  alone with `Task.input_only_template` (e.g. LaMP-2 ``the movie: "<description>" ``; LaMP-7 has
  no input field and raises `ValueError`); ``only_output`` renders the output field alone with
  `Task.output_only_template` (e.g. LaMP-2 ``a movie tagged "<tag>" ``; nothing is truncated,
  the whole item is its fixed cost, and an item larger than its room fails the attempt); ``decouple`` keeps the official templates but gives each item
  another item's output field (a random derangement for k >= 2, seeded by
  ``f"{seed}:{question_id}:decouple"``), breaking the input-output pairing while keeping both
  distributions. Decoupling happens on the retrieved list, before reordering. The partial
  templates' fixed cost is the template with ``{free}`` replaced by a space, as in the official code.
* ``budget``: ``official`` or ``strict``, the zero-room rule above.
* ``user_context``: ``user_id`` prefixes the input with ``f"User {user_id}: "`` before budgeting
  (the identity-only personalization control); callers pass `LaMPQuestion.user`.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal, get_args

from lamp_pl.errors import ConfigError
from lamp_pl.tasks import Task, get_task

Order = Literal["start", "end", "middle", "random"]
Ablation = Literal["both", "only_input", "only_output", "decouple"]
UserContext = Literal["none", "user_id"]
Budget = Literal["official", "strict"]


@dataclass(frozen=True)
class PromptOptions:
    """How retrieved items are arranged and rendered (see the module docstring)."""

    order: Order = "start"
    """Where the best items go: start (first), end (reversed, next to the input), middle (best in
    the centre), random (seeded shuffle)."""
    ablation: Ablation = "both"
    """Which part of each item is shown: both (official template), only_input, only_output, or
    decouple (outputs shuffled among the items)."""
    user_context: UserContext = "none"
    """user_id: prefix the input with "User <id>: " (the user-id context control)."""
    seed: int = 0
    """Seeds ``order="random"`` and ``ablation="decouple"``, together with the question id."""
    budget: Budget = "official"
    """An item whose truncation length is exactly 0: official (as the official code: the whole
    item goes in) | strict (no room: retry with a smaller factor)."""

    def __post_init__(self) -> None:
        for name, kind in (("order", Order), ("ablation", Ablation), ("user_context", UserContext), ("budget", Budget)):
            allowed = get_args(kind)
            if getattr(self, name) not in allowed:
                raise ConfigError(f"PromptOptions.{name} must be one of {allowed}, got {getattr(self, name)!r}")


@dataclass(frozen=True)
class _Form:
    """How one item is rendered: template, the field truncated into ``{free}`` and the fixed cost."""

    template: str
    free_field: str | None
    fixed: str | int | None = None


class _NoRoom(Exception):
    """An item does not fit its share of the budget at this factor (the official retry trigger)."""


def count_tokens(tokenizer: Any, text: str) -> int:
    """Token count of `text` as the official code measures it, special tokens included."""
    return len(tokenizer(text)["input_ids"])


def _form(task: Task, ablation: Ablation) -> _Form:
    if ablation in ("both", "decouple"):
        if ablation == "decouple" and task.output_field is None:
            raise ConfigError(f"{task.name} has no output_field, so ablation='decouple' is undefined")
        return _Form(task.item_template, task.free_field, task.fixed)
    if ablation == "only_input":
        if task.input_field is None or task.input_only_template is None:
            raise ConfigError(
                f"{task.name} has no input field (its profile items hold only what the user wrote), "
                "so ablation='only_input' is undefined; use 'both' or 'only_output'"
            )
        return _Form(task.input_only_template, task.input_field)
    if task.output_only_template is None:
        raise ConfigError(f"{task.name} has no output_only_template, so ablation='only_output' is undefined")
    return _Form(task.output_only_template, None)


def _middle(items: list[dict]) -> list[dict]:
    """Best item in the centre, then alternately left and right, outward."""
    placed: list[dict] = []
    for rank, item in enumerate(items):
        if rank % 2:
            placed.insert(0, item)
        else:
            placed.append(item)
    return placed


def _decouple(items: list[dict], field: str, rng: random.Random) -> list[dict]:
    """Each item gets another item's `field`: a uniform random derangement (rejection sampling
    needs e ~ 2.7 shuffles on average)."""
    if len(items) < 2:
        return items
    donors = list(range(len(items)))
    while any(i == d for i, d in enumerate(donors)):
        rng.shuffle(donors)
    return [{**item, field: items[d][field]} for item, d in zip(items, donors)]


def arrange(items: Sequence[dict], task: Task, options: PromptOptions, question_id: str = "") -> list[dict]:
    """The retrieved items after the ablation's re-pairing and the order option."""
    arranged = list(items)
    if options.ablation == "decouple":
        arranged = _decouple(arranged, task.output_field, random.Random(f"{options.seed}:{question_id}:decouple"))
    if options.order == "end":
        arranged.reverse()
    elif options.order == "middle":
        arranged = _middle(arranged)
    elif options.order == "random":
        random.Random(f"{options.seed}:{question_id}").shuffle(arranged)
    return arranged


def _fixed_cost(tokenizer: Any, form: _Form, item: dict) -> int:
    if isinstance(form.fixed, int):
        return form.fixed
    template = form.fixed if form.fixed is not None else form.template.replace("{free}", " ")
    return count_tokens(tokenizer, template.format_map(item))


def _render_items(
    tokenizer: Any, form: _Form, items: list[dict], fixed: list[int], share: int, budget: Budget
) -> list[str]:
    """Each item truncated to its share plus what earlier items left unused; raises `_NoRoom`."""
    rendered, saved = [], 0
    for item, cost in zip(items, fixed):
        room = share + saved - cost
        if form.free_field is None:
            # Nothing to truncate: the item fits whole or the attempt fails.
            if room < 0:
                raise _NoRoom
            saved = room
            rendered.append(form.template.format_map(item))
            continue
        if room < 0 or (room == 0 and budget == "strict"):
            raise _NoRoom
        text = str(item[form.free_field])
        if room:
            ids = tokenizer(text, max_length=room, truncation=True)["input_ids"]
        else:  # official budget: the official call's max_length=0 means "no truncation" to Hugging Face
            ids = tokenizer(text)["input_ids"]
        saved = room - len(ids)
        free = tokenizer.batch_decode([ids], skip_special_tokens=True)[0]
        rendered.append(form.template.format_map({**item, "free": free}))
    return rendered


def _assemble(task: Task, text: str, joined: str) -> str:
    if task.insert_after is None:
        return task.layout.format(items=joined, input=text)
    at = text.find(task.insert_after)
    if at < 0:
        return text
    end = at + len(task.insert_after)
    return task.layout.format(items=joined, input=text[:end] + ", and " + joined + text[end:])


def build_prompt(
    task: Task | str,
    input_text: str,
    items: Sequence[dict],
    tokenizer: Any,
    max_length: int = 512,
    options: PromptOptions = PromptOptions(),
    question_id: str = "",
    user_id: str | None = None,
) -> str:
    """The official LaMP prompt of `input_text` augmented with the retrieved `items`.

    Args:
        task: A `Task` or a registry name.
        input_text: The question's input.
        items: Retrieved profile items, best first; all of them are used (k = len(items)).
        tokenizer: A Hugging Face tokenizer of the generator (budgets are in its tokens).
        max_length: The generator's input length in tokens.
        options: Order, ablation and user-context options of the profile study.
        question_id: Seeds the random order and the decoupling per question.
        user_id: The user named by ``options.user_context="user_id"``.

    Returns:
        The prompt; the bare input (with its user prefix) when k = 0 or no budget factor fits.

    Raises:
        ValueError: An ablation the task does not support, or a user context without `user_id`.
    """
    task = get_task(task)
    form = _form(task, options.ablation)
    text = input_text
    if options.user_context == "user_id":
        if user_id is None:
            raise ValueError("user_context='user_id' needs a user_id (pass LaMPQuestion.user)")
        text = f"User {user_id}: {input_text}"
    if not items:
        return text
    arranged = arrange(items, task, options, question_id)
    k = len(arranged)
    fixed = [_fixed_cost(tokenizer, form, item) for item in arranged]
    suffix = count_tokens(tokenizer, task.budget_suffix) if task.budget_suffix else 0
    input_count = count_tokens(tokenizer, text)
    for tenths in range(6, -1, -1):
        budget = max_length - min(input_count, tenths * max_length // 10)
        share = (budget - task.share_reserve - 2 * (k - 1) - suffix) // k
        try:
            rendered = _render_items(tokenizer, form, arranged, fixed, share, options.budget)
        except _NoRoom:
            continue
        return _assemble(task, text, ", and ".join(rendered))
    return text


__all__ = ["PromptOptions", "arrange", "build_prompt", "count_tokens"]
