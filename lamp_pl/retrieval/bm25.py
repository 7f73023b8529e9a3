"""Okapi BM25 scored and ranked exactly as the official LaMP code ranks (``rank_bm25.BM25Okapi``).

The collection is one question's candidate items; documents and query are token lists (the
official tokenization is ``text.split()``). With N documents, n(t) the documents holding term t,
tf the term's count in a document, |d| its length and avgdl the mean length::

    idf(t)   = log(N - n(t) + 0.5) - log(n(t) + 0.5)
    idf(t)   = epsilon * mean idf        when idf(t) < 0 (idf exactly 0 is kept)
    score(d) = sum over query tokens t (repeats count again) of
               idf(t) * tf * (k1 + 1) / (tf + k1 * (1 - b + b * |d| / avgdl))

The mean idf is taken over every distinct term of the collection, *before* negative values are
replaced. A query term absent from the collection adds nothing. k1 = 1.5, b = 0.75, epsilon = 0.25.

Bit-for-bit parity matters because ranks are broken on exact ties: the idfs are computed with
`math.log` and summed left to right in first-occurrence order, and the per-term arithmetic is the
same sequence of float64 operations as rank_bm25's, so equal documents get *equal* floats. The
ranking is ``np.argsort(scores)[::-1]`` with numpy's default (introsort) kind, as rank_bm25's
``get_top_n``. The order among tied scores is that sort's, so it depends on the installed numpy
and the CPU: numpy 1.x's scalar introsort (the official environment pins numpy 1.24) sorts up to
16 documents by insertion (stable: the later profile item comes first), while numpy 2 on a CPU
with AVX2 or AVX-512 takes a SIMD kernel that is not stable. The same call on bit-identical
scores gives the official order under the same numpy on the same machine; across numpy majors
tied items may swap (`bench/vs_official.py` shows it; see the README's differences).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Hashable, Iterable, Sequence

import numpy as np

K1, B, EPSILON = 1.5, 0.75, 0.25


def okapi_idf(documents: Sequence[Sequence[str]]) -> dict[str, float]:
    """Each distinct term's idf over `documents`, negative ones floored at epsilon x the mean idf."""
    n_docs = len(documents)
    doc_freq: dict[str, int] = {}
    for document in documents:
        # dict.fromkeys keeps first-occurrence order, which fixes the summation order below.
        for term in dict.fromkeys(document):
            doc_freq[term] = doc_freq.get(term, 0) + 1
    idf: dict[str, float] = {}
    total = 0.0
    for term, freq in doc_freq.items():
        idf[term] = math.log(n_docs - freq + 0.5) - math.log(freq + 0.5)
        total += idf[term]  # a plain running sum: sum()/fsum would round differently
    if idf:
        floor = EPSILON * (total / len(idf))
        for term, value in idf.items():
            if value < 0:
                idf[term] = floor
    return idf


def okapi_scores(query: Sequence[str], documents: Sequence[Sequence[str]]) -> np.ndarray:
    """BM25Okapi score of every document for `query` (float64, one per document).

    Args:
        query: The query's tokens.
        documents: The collection, one token list per document.

    Returns:
        The scores, in document order; all zero when no query term occurs in the collection.
    """
    statistics = OkapiStatistics()
    statistics.add(range(len(documents)), documents)
    return statistics.scores(query, range(len(documents)))


class OkapiStatistics:
    """Per-document BM25 statistics built once and shared by every collection drawn from them.

    On time-based data a user's questions rank overlapping parts of one history: each item's
    distinct terms, term counts and length are computed when the item is first seen (`add`), and
    a question's collection statistics (document frequencies, idf, mean idf, mean length) are
    then assembled from them with integer counts and the same float64 operations, in the same
    order, as `okapi_idf` and the per-question formula, so scores are bit-identical to scoring
    each collection from scratch (and ties stay ties).
    """

    def __init__(self) -> None:
        self.vocabulary: dict[str, int] = {}
        self.row: dict[Hashable, int] = {}
        """Each added document's number, by key."""
        # Every document's distinct terms (first-occurrence order) and their counts, end to end;
        # document i's are at [start[i], start[i] + width[i]).
        self._terms, self._counts = np.empty(1024, dtype=np.int64), np.empty(1024, dtype=np.int64)
        self._used = 0
        self._start: list[int] = []
        self._width: list[int] = []
        self._length: list[int] = []
        self._log = np.empty(0)
        """log(j + 0.5) for j = 0, 1, ...: each idf is a difference of two of them."""

    def __contains__(self, key: Hashable) -> bool:
        return key in self.row

    def add(self, keys: Iterable[Hashable], documents: Iterable[Sequence[str]]) -> None:
        """Record the statistics of each document (a token list) under its key (an item row)."""
        vocabulary = self.vocabulary
        for key, document in zip(keys, documents, strict=True):
            counts = Counter(document)  # keys in first-occurrence order
            end = self._used + len(counts)
            if end > len(self._terms):  # grow by doubling: amortised constant time per term
                size = max(end, 2 * len(self._terms))
                self._terms = np.resize(self._terms, size)
                self._counts = np.resize(self._counts, size)
            self._terms[self._used : end] = [vocabulary.setdefault(term, len(vocabulary)) for term in counts]
            self._counts[self._used : end] = list(counts.values())
            self.row[key] = len(self._start)
            self._start.append(self._used)
            self._width.append(len(counts))
            self._length.append(len(document))
            self._used = end

    def _logs(self, n_docs: int) -> np.ndarray:
        if len(self._log) <= n_docs:
            # math.log of the same float as the reference's `n - freq + 0.5` (numpy's log may round
            # differently on some CPUs).
            self._log = np.array([math.log(j + 0.5) for j in range(2 * n_docs + 1)])
        return self._log

    def _gather(self, keys: Sequence[Hashable]) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """The collection `keys`, end to end: terms, counts, document of each, and lengths."""
        docs = [self.row[key] for key in keys]
        start = np.array(self._start)[docs]
        width = np.array(self._width)[docs]
        document = np.repeat(np.arange(len(docs)), width)
        # Position j of the collection is entry j - (collection start of its document) of it.
        where = np.arange(len(document)) + np.repeat(start - (np.cumsum(width) - width), width)
        return self._terms[where], self._counts[where], document, np.array(self._length)[docs]

    def scores(self, query: Sequence[str], keys: Sequence[Hashable]) -> np.ndarray:
        """BM25Okapi score of each document of `keys` (all added before) as one collection."""
        n_docs, scores = len(keys), np.zeros(len(keys))
        terms = [t for t in dict.fromkeys(query) if t in self.vocabulary]
        if not n_docs or not terms:
            return scores
        flat, counts, document, lengths = self._gather(keys)
        # Document frequencies by counting, and each term's first position in the collection
        # (a term is "first seen" where that position is its own): no sort of the collection.
        positions = np.arange(len(flat))
        doc_freq = np.bincount(flat, minlength=len(self.vocabulary))
        first = np.full(len(self.vocabulary), len(flat))
        np.minimum.at(first, flat, positions)
        seen = flat[first[flat] == positions]  # the collection's terms in first-occurrence order
        terms = [t for t in terms if doc_freq[self.vocabulary[t]] > 0]  # those in this collection
        if not terms:
            return scores
        logs = self._logs(n_docs)
        # The reference sums the idfs left to right in first-occurrence order; accumulate is that
        # plain running sum (a reduction would be pairwise and round differently).
        total = float(np.add.accumulate(logs[n_docs - doc_freq[seen]] - logs[doc_freq[seen]])[-1])
        ids = np.array([self.vocabulary[t] for t in terms], dtype=np.int64)
        idf = logs[n_docs - doc_freq[ids]] - logs[doc_freq[ids]]
        idf[idf < 0] = EPSILON * (total / len(seen))
        # Term frequencies of the query's terms: the (document, column, count) of each match.
        columns = np.full(len(self.vocabulary), -1)
        columns[ids] = np.arange(len(ids))
        of_flat = columns[flat]
        match = of_flat >= 0
        tf = np.zeros((n_docs, len(ids)), dtype=np.int64)
        tf[document[match], of_flat[match]] = counts[match]
        avgdl = int(lengths.sum()) / n_docs
        norm = K1 * (1 - B + B * lengths / avgdl)
        # Element by element the reference's operations, each term's column at once.
        gain = idf * (tf * (K1 + 1) / (tf + norm[:, None]))
        column = {t: j for j, t in enumerate(terms)}
        for term in query:  # in query order, repeats included, as the reference accumulates
            if term in column:
                scores += gain[:, column[term]]
        return scores


def okapi_order(scores: np.ndarray) -> np.ndarray:
    """Document positions best first, ties as the official ``np.argsort(scores)[::-1]``."""
    return np.argsort(scores)[::-1]


__all__ = ["EPSILON", "K1", "B", "OkapiStatistics", "okapi_idf", "okapi_order", "okapi_scores"]
