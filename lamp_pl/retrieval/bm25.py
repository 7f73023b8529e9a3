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
from collections.abc import Sequence

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
    scores = np.zeros(len(documents))
    if not documents:
        return scores
    idf = okapi_idf(documents)
    terms = [t for t in dict.fromkeys(query) if t in idf]
    if not terms:
        return scores
    column = {t: j for j, t in enumerate(terms)}
    tf = np.zeros((len(documents), len(terms)), dtype=np.int64)
    for row, document in enumerate(documents):
        for term, count in Counter(t for t in document if t in column).items():
            tf[row, column[term]] = count
    lengths = np.array([len(d) for d in documents])
    avgdl = int(lengths.sum()) / len(documents)
    norm = K1 * (1 - B + B * lengths / avgdl)
    for term in query:  # in query order, repeats included, as the reference accumulates
        if term in column:
            freq = tf[:, column[term]]
            scores += idf[term] * (freq * (K1 + 1) / (freq + norm))
    return scores


def okapi_order(scores: np.ndarray) -> np.ndarray:
    """Document positions best first, ties as the official ``np.argsort(scores)[::-1]``."""
    return np.argsort(scores)[::-1]


__all__ = ["EPSILON", "K1", "B", "okapi_idf", "okapi_order", "okapi_scores"]
