"""`retriever: hybrid`: reciprocal-rank and weighted-score fusion over the members' own caches."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from lamp_pl.errors import ConfigError
from lamp_pl.retrieval import Encoder, RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.hybrid import fuse
from lamp_pl.retrieval.protocol import Ranking
from lamp_pl.retrieval.results import open_results

TASK = "LaMP_4"


def test_fusion_rules():
    a, b = Ranking.of([1, 2, 3], [9.0, 5.0, 1.0]), Ranking.of([3, 4], [0.7, 0.2])
    rrf = fuse([a, b], "rrf", [1.0, 1.0], 60.0, 10)
    expected = {1: 1 / 61, 2: 1 / 62, 3: 1 / 63 + 1 / 61, 4: 1 / 62}
    assert rrf.items.tolist() == [3, 1, 2, 4]  # 2 and 4 tie: first appearance first
    np.testing.assert_allclose(rrf.scores, [expected[i] for i in rrf.items.tolist()], rtol=1e-6)
    weighted = fuse([a, b], "weighted", [1.0, 2.0], 60.0, 2)
    # a: 1 -> 1, 2 -> 0.5, 3 -> 0; b: 3 -> 2 * 1, 4 -> 0.
    assert weighted.items.tolist() == [3, 1] and weighted.scores.tolist() == [2.0, 1.0]


def test_hybrid_fuses_the_members_cached_rankings(data_root, tiny_bert, tmp_path):
    base = RetrievalConfig(encoder=str(tiny_bert), k_max=4, hybrid_depth=6)
    members = [dataclasses.replace(base, retriever=name, k_max=6) for name in ("bm25", "contriever")]
    for member in members:
        prepare_retrieval(TASK, data_root, ["dev"], member, tmp_path, progress=False)
    files = [path for path in tmp_path.rglob("results/*.npz")]
    stamps = {path: path.stat().st_mtime_ns for path in files}
    calls = Encoder.total_forward_calls
    hybrid = dataclasses.replace(base, retriever="hybrid", hybrid_rrf_k=10.0)
    summary = prepare_retrieval(TASK, data_root, ["dev"], hybrid, tmp_path, progress=False)
    assert summary["results_computed"] == {"dev": True} and Encoder.total_forward_calls == calls
    assert {path: path.stat().st_mtime_ns for path in files} == stamps  # each member's cache reused
    got = load_retrieved(TASK, data_root, "dev", hybrid, tmp_path, k=4)
    rankings = [open_results(TASK, "dev", member, tmp_path)[0] for member in members]
    for q, retrieved in enumerate(got):
        scores: dict[int, float] = {}
        for results in rankings:
            for rank, row in enumerate(results.items[results.offsets[q] : results.offsets[q + 1]].tolist(), 1):
                scores[row] = scores.get(row, 0.0) + 1 / (10 + rank)
        best = sorted(scores.values(), reverse=True)[:4]
        np.testing.assert_allclose(retrieved.scores, best, rtol=1e-5)
    weighted = dataclasses.replace(hybrid, hybrid_fusion="weighted", hybrid_weights=[0.3, 0.7])
    prepare_retrieval(TASK, data_root, ["dev"], weighted, tmp_path, progress=False)
    tops = [r.scores[0] for r in load_retrieved(TASK, data_root, "dev", weighted, tmp_path, k=1) if r.scores]
    assert tops and all(0.0 < top <= 1.0 + 1e-6 for top in tops)  # weights sum to 1, scores in [0, 1]


def test_bad_hybrid_settings_are_config_errors(tiny_bert, data_root, tmp_path):
    with pytest.raises(ConfigError, match="hybrid_members"):
        RetrievalConfig(retriever="hybrid", hybrid_members=["bm25", "nope"])
    with pytest.raises(ConfigError, match="two or more"):
        prepare_retrieval(
            TASK, data_root, ["dev"], RetrievalConfig(retriever="hybrid", hybrid_members=["bm25"]), tmp_path
        )
    with pytest.raises(ConfigError, match="cannot be a member"):
        prepare_retrieval(
            TASK, data_root, ["dev"], RetrievalConfig(retriever="hybrid", hybrid_members=["bm25", "mixed"]), tmp_path
        )
