"""Retrievers: one protocol, `rank(view, q, k) -> Ranking`, for each way of choosing profile items.

A retriever ranks the *candidates* of question `q` (its profile items, each distinct item once, in
profile order, without those identical to the query when `drop_identical` is set) and returns at
most `k` of them, best first. `k` larger than the profile returns the whole profile ranked; an
empty profile returns nothing. Rules that differ from the official LaMP code are stated on the
class that implements them. The user-profile study's controls are in `lamp_pl.retrieval.controls`;
`lamp_pl.retrieval.registry` builds any of them by name.
"""

from __future__ import annotations

import datetime
import math
from collections import OrderedDict
from dataclasses import dataclass

import numpy as np

from lamp_pl.errors import ConfigError
from lamp_pl.extras import require
from lamp_pl.retrieval.bm25 import OkapiStatistics, okapi_order, okapi_scores
from lamp_pl.retrieval.protocol import Ranking, Retriever, SplitView

_EMPTY_ROWS = np.empty(0, dtype=np.int64)
_USERS_KEPT = 4
"""Users whose BM25 statistics a view keeps (a split lists a user's questions together)."""


@dataclass
class NoRetriever:
    """``none``: always empty (the k = 0 baseline)."""

    name: str = "none"
    dense: bool = False

    def settings(self) -> dict:
        return {"name": self.name}

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        return Ranking.of(_EMPTY_ROWS)


@dataclass
class DenseRetriever(NoRetriever):
    """``contriever``: exact inner product of the encoded query and items (per-user FAISS index)."""

    name: str = "contriever"
    dense: bool = True

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        rows, scores = view.index.search(int(view.tables.query_rows[q]), view.user(q), view.candidates(q), k)
        return Ranking.of(rows, scores)


@dataclass
class BM25Retriever(NoRetriever):
    """``bm25`` (k1 = 1.5, b = 0.75) over the question's own profile.

    `impl`: ``official`` scores and ranks as the official code's rank_bm25 ``BM25Okapi``
    (`lamp_pl.retrieval.bm25`: a negative idf becomes 0.25 x the mean idf; ties as
    ``np.argsort(scores)[::-1]``, i.e. the later profile item first); ``bm25s`` is the faster
    bm25s library with variant `method` (``robertson`` floors a negative idf at 0, so stop words
    rank differently) and ties in profile order. `tokenizer`: ``whitespace`` is the official rule
    (``text.split()``, case kept); ``bm25s`` is bm25s's own (lower case, ``\\w\\w+`` tokens,
    English stop words removed).
    """

    name: str = "bm25"
    tokenizer: str = "whitespace"
    method: str = "robertson"
    impl: str = "official"

    def __post_init__(self) -> None:
        if self.tokenizer not in ("whitespace", "bm25s"):
            raise ConfigError(f"bm25_tokenizer must be 'whitespace' or 'bm25s', got {self.tokenizer!r}")
        if self.impl not in ("official", "bm25s"):
            raise ConfigError(f"bm25_impl must be 'official' or 'bm25s', got {self.impl!r}")
        for setting, value in (("bm25_impl", self.impl), ("bm25_tokenizer", self.tokenizer)):
            if value == "bm25s":  # checked when the retriever is configured, before anything is built
                require("bm25s", f"{setting}: bm25s")

    def settings(self) -> dict:
        if self.impl == "official":  # method is bm25s's alone: it must not split the cache
            return {"name": self.name, "impl": self.impl, "tokenizer": self.tokenizer}
        return {"name": self.name, "impl": self.impl, "tokenizer": self.tokenizer, "method": self.method}

    def tokens(self, texts: list[str]) -> list[list[str]]:
        if self.tokenizer == "whitespace":
            return [text.split() for text in texts]
        import bm25s

        return bm25s.tokenize(texts, stopwords="en", return_ids=False, show_progress=False)

    def scores(self, query: str, texts: list[str]) -> np.ndarray:
        """BM25 score of each text for `query`, with the texts as the collection."""
        if self.impl == "official":
            return okapi_scores(self.tokens([query])[0], self.tokens(texts))
        import bm25s

        model = bm25s.BM25(k1=1.5, b=0.75, method=self.method)
        model.index(self.tokens(texts), show_progress=False)
        return model.get_scores_from_ids(model.get_tokens_ids(self.tokens([query])[0]))

    def statistics(self, view: SplitView, q: int, rows: np.ndarray) -> OkapiStatistics:
        """The shared BM25 statistics holding every item of `rows`, kept per user on the view.

        A user's questions (time-based data: overlapping histories) tokenize and count each item
        once; the last few users' statistics are kept, so memory stays bounded on a large split.
        """
        kept: OrderedDict[int, OkapiStatistics] = view.shared.setdefault(("bm25", self.tokenizer), OrderedDict())
        user = view.user(q)
        statistics = kept.pop(user, None)
        kept[user] = statistics = OkapiStatistics() if statistics is None else statistics
        while len(kept) > _USERS_KEPT:
            kept.popitem(last=False)
        new = [r for r in dict.fromkeys(rows.tolist()) if r not in statistics]
        if new:
            statistics.add(new, self.tokens([view.text(r) for r in new]))
        return statistics

    def top(self, view: SplitView, q: int, rows: np.ndarray, k: int) -> Ranking:
        if not len(rows) or k <= 0:
            return Ranking.of(_EMPTY_ROWS)
        if self.impl == "official":
            statistics = self.statistics(view, q, rows)
            scores = statistics.scores(self.tokens([view.query(q)])[0], rows.tolist())
        else:
            scores = self.scores(view.query(q), [view.text(int(r)) for r in rows])
        order = okapi_order(scores)[:k] if self.impl == "official" else np.argsort(-scores, kind="stable")[:k]
        return Ranking.of(rows[order], scores[order])

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        return self.top(view, q, view.candidates(q), k)


_DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y",
    "%Y-%m",
    "%Y",
)


def parse_date(value: object) -> datetime.datetime | None:
    """A profile item's ``date`` as a naive (UTC) datetime, or None when absent or unparseable.

    Accepts ISO forms (``YYYY-MM-DD``, with ``T`` or space and a time, with a zone), ``YYYY/MM/DD``,
    ``MM/DD/YYYY`` (each optionally with ``HH:MM:SS``), ``YYYY-MM`` and ``YYYY``.
    """
    if value is None or isinstance(value, bool):
        return None
    text = str(value).strip()
    try:
        parsed = datetime.datetime.fromisoformat(text)
    except ValueError:
        parsed = None
        for fmt in _DATE_FORMATS:
            try:
                parsed = datetime.datetime.strptime(text, fmt)
                break
            except ValueError:
                continue
    if parsed is not None and parsed.tzinfo is not None:
        parsed = parsed.astimezone(datetime.UTC).replace(tzinfo=None)
    return parsed


@dataclass
class RecencyRetriever(NoRetriever):
    """``recency``: newest first by the item's ``date``. Equal dates: the later profile position
    first (the official stable sort, then reversed). Items without a parseable date follow, in
    profile order."""

    name: str = "recency"

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        rows = view.candidates(q)
        dates = [parse_date(view.item(int(r)).get("date")) for r in rows]
        dated = sorted((d, p) for p, d in enumerate(dates) if d is not None)[::-1]
        order = [p for _, p in dated] + [p for p, d in enumerate(dates) if d is None]
        return Ranking.of(rows[order[:k]] if order else _EMPTY_ROWS)


@dataclass
class RandomRetriever(NoRetriever):
    """``random``: seeded per question. Without replacement by default (a shuffled profile); with
    `with_replacement` (the official ``random.choices``) it draws exactly k items, repeats allowed."""

    name: str = "random"
    seed: int = 0
    with_replacement: bool = False

    def settings(self) -> dict:
        return {"name": self.name, "seed": self.seed, "with_replacement": self.with_replacement}

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        rows, rng = view.candidates(q), view.rng(q, self.seed)
        if not len(rows):
            return Ranking.of(_EMPTY_ROWS)
        picks = rng.integers(0, len(rows), size=k) if self.with_replacement else rng.permutation(len(rows))[:k]
        return Ranking.of(rows[picks])


def interleave_newest(newest: list[int], dense: list[int]) -> list[int]:
    """One list whose first k entries, for every k, are ceil(k/2) newest items plus the floor(k/2)
    best dense-ranked items among the rest (each step adds exactly one item, so prefixes nest)."""
    chosen_new: set[int] = set()
    chosen_dense: set[int] = set()
    out: list[int] = []
    at = 0

    def next_dense() -> int:
        nonlocal at
        while dense[at] in chosen_new:
            at += 1
        chosen_dense.add(dense[at])
        at += 1
        return dense[at - 1]

    for k in range(1, len(newest) + 1):
        if k % 2:  # the newest half grows by one item
            item = newest[k // 2]
            chosen_new.add(item)
            # Already picked as a dense item: it moves to the newest half, so the dense half refills.
            out.append(next_dense() if item in chosen_dense else item)
        else:
            out.append(next_dense())
    return out


@dataclass
class RecencyDenseRetriever(DenseRetriever):
    """``recency_contriever``: the top k are the ceil(k/2) newest items plus the floor(k/2) best
    contriever-ranked items among the others, for every k (see `interleave_newest`), so a list
    cached up to k_max serves every k. Differences from the official code, which takes k//2 of
    each (k-1 items for odd k) and may repeat an item present in both halves: no repeats, and an
    odd k gives the extra item to recency. Prefix order is insertion order (newest, contriever,
    newest, ...); scores are the contriever scores."""

    name: str = "recency_contriever"

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        n = len(view.candidates(q))
        dense = super().rank(view, q, n)
        newest = RecencyRetriever().rank(view, q, n).items.tolist()
        merged = interleave_newest(newest, dense.items.tolist())[:k]
        score_of = dict(zip(dense.items.tolist(), dense.scores.tolist(), strict=True))
        return Ranking.of(merged, [score_of[r] for r in merged])


def resolve_k(k: float, profile_size: int) -> int:
    """Items to return for `k`: an integer k as is; 0 < k < 1 a fraction of the profile, rounded
    half up, at least 1 when the profile is not empty."""
    if k < 0 or math.isnan(k):
        raise ConfigError(f"k must be >= 0, got {k}")
    if 0 < k < 1:
        return max(1, math.floor(k * profile_size + 0.5)) if profile_size else 0
    if k != int(k):
        raise ConfigError(f"k must be an integer or a fraction in (0, 1), got {k}")
    return int(k)


__all__ = ["Ranking", "Retriever", "SplitView", "interleave_newest", "parse_date", "resolve_k"]
