"""`retrieval.use_date`: profile items' dates appended to their retrieval text.

The official ranker's ``--use_date`` option builds the text it ranks (with BM25 or with a dense
encoder) as the item's usual retrieval text, then one space, the word ``date:``, one space and
the item's ``date`` field exactly as the data holds it; the query is left as it is, and the
recency ranker ignores the option (it reads the date field itself). `dated_task` gives a `Task`
whose `item_text` follows that rule, so the index, BM25 and the encoder all see the dated text.
The dated task's fingerprint differs from the plain one's, so its index (and every results key
built on it) lives in a folder of its own: the option is part of the cache key.
"""

from __future__ import annotations

import dataclasses
from typing import Any

from lamp_pl.errors import LaMPError
from lamp_pl.tasks import Task

DATE_FIELD = "date"


class MissingDateError(LaMPError, ValueError):
    """`retrieval.use_date` is on but a profile item has no date."""


def dated_text(text: str, item: dict) -> str:
    """`text` with the item's date appended as the official ranker does: ``"<text> date: <date>"``.

    Raises:
        MissingDateError: the item has no ``date`` field.
    """
    if DATE_FIELD not in item:
        raise MissingDateError(
            f"profile item {item.get('id')!r} has no {DATE_FIELD!r} field, which retrieval.use_date needs"
        )
    return f"{text} date: {item[DATE_FIELD]}"


@dataclasses.dataclass(frozen=True)
class DatedTask(Task):
    """A task whose items' retrieval text carries their date (see the module docstring)."""

    use_date: bool = True

    def item_text(self, item: dict) -> str:
        return dated_text(super().item_text(item), item)


def dated_task(task: Task) -> Task:
    """The dated twin of `task` (the same task when it already is one)."""
    if isinstance(task, DatedTask):
        return task
    return DatedTask(**{f.name: getattr(task, f.name) for f in dataclasses.fields(Task)})


def retrieval_task(task: Task, config: Any) -> Task:
    """The task whose item text the retrieval of `config` ranks: dated when ``config.use_date``."""
    return dated_task(task) if getattr(config, "use_date", False) else task


__all__ = ["DatedTask", "MissingDateError", "dated_task", "dated_text", "retrieval_task"]
