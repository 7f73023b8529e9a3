"""The retriever protocol: what a retriever sees of a split (`SplitView`) and returns (`Ranking`).

A `Retriever` ranks the candidates of question `q` of a `SplitView` and returns a `Ranking` of at
most `k` item rows, best first; `lamp_pl.retrieval.retrievers` holds the retrievers themselves.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from typing import Any, Protocol

import numpy as np

from lamp_pl.data.lamp import LaMPQuestion
from lamp_pl.errors import ConfigError
from lamp_pl.retrieval.index import ProfileIndex
from lamp_pl.tasks import Task


@dataclass
class Ranking:
    """Ranked item rows of one question, best first."""

    items: np.ndarray
    scores: np.ndarray
    output_items: np.ndarray | None = None
    """`mixed` only: whose output field replaces each item's output field."""
    first_scores: np.ndarray | None = None
    """Reranked only: each item's first-stage score (`scores` are the cross-encoder's)."""

    @classmethod
    def of(cls, items: Any, scores: Any = None) -> Ranking:
        """Ranking of `items`; no scores = reciprocal rank, for retrievers that have none."""
        items = np.asarray(items, dtype=np.int64)
        scores = 1.0 / np.arange(1, len(items) + 1) if scores is None else scores
        return cls(items, np.asarray(scores, dtype=np.float32))


class SplitView:
    """What a retriever sees of one split: index tables plus the questions' queries and inputs."""

    def __init__(
        self, task: Task, index: ProfileIndex, split: str, questions: list[LaMPQuestion], drop_identical: bool = False
    ) -> None:
        self.task, self.index, self.split, self.questions = task, index, split, questions
        self.tables = index.splits[split]
        if [q.id for q in questions] != self.tables.question_ids.tolist():
            raise ConfigError(f"the {split} questions differ from those the index at {index.folder} was built from")
        self.drop_identical = drop_identical
        self.text = functools.lru_cache(maxsize=1 << 18)(index.item_text_of)
        self.item = functools.lru_cache(maxsize=1 << 16)(index.item)
        # Per view (not per class) so a finished split's view and its caches can be freed.
        self.candidates = functools.lru_cache(maxsize=None)(self._candidates)
        self.shared: dict[object, Any] = {}
        """State a retriever builds once for many questions (BM25's per-item statistics)."""
        sizes = np.diff(self.tables.offsets)
        self.mean_profile_size = float(sizes.mean()) if len(sizes) else 0.0

    def __len__(self) -> int:
        return len(self.questions)

    def query(self, q: int) -> str:
        return self.task.query(self.questions[q].input) or ""

    def user(self, q: int) -> int:
        return int(self.tables.users[q])

    def _candidates(self, q: int) -> np.ndarray:
        """Item rows the question may retrieve from: its profile, in profile order."""
        rows = self.tables.profile(q)
        rows = rows[np.sort(np.unique(rows, return_index=True)[1])]  # repeated items count once
        if self.drop_identical:
            same = {self.query(q).strip(), self.questions[q].input.strip()}
            rows = rows[[self.text(int(r)).strip() not in same for r in rows]] if len(rows) else rows
        return rows

    def rng(self, q: int, seed: int, salt: str = "") -> np.random.Generator:
        """A generator seeded by (seed, question id): the same question draws the same items in
        any run and whatever the split's order."""
        digest = hashlib.sha256(f"{salt}{self.questions[q].id}".encode()).digest()
        return np.random.default_rng([seed, int.from_bytes(digest[:8], "little")])


class Retriever(Protocol):
    """Ranks a question's candidates; `settings()` is what the results cache is keyed by."""

    name: str
    dense: bool

    def settings(self) -> dict: ...

    def rank(self, view: SplitView, q: int, k: int) -> Ranking: ...


__all__ = ["Ranking", "Retriever", "SplitView"]
