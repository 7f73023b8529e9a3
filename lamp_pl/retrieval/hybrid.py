"""`retriever: hybrid`: two or more rankings fused into one (BM25 and dense, or any others).

Each member (``retrieval.hybrid_members``, e.g. ``[bm25, contriever]``) ranks the question's
profile to ``retrieval.hybrid_depth`` items, through its own results cache: the facade prepares
each member's cache first (a cache already there is reused, not recomputed) and the hybrid reads
them. Fusion (``retrieval.hybrid_fusion``):

* ``rrf`` -- reciprocal-rank fusion: an item's score is the sum over members of
  ``weight / (rrf_k + rank)`` (rank 1 = best; ``rrf_k`` = 60 as Cormack et al.);
* ``weighted`` -- a weighted sum of each member's scores min-max normalised over its list (an
  item a member did not return adds 0; a list of equal scores normalises to 1).

Ties keep the order of first appearance (the first member's ranking, then the next's).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from lamp_pl.errors import ConfigError
from lamp_pl.retrieval.index import CacheError
from lamp_pl.retrieval.protocol import Ranking, Retriever, SplitView
from lamp_pl.retrieval.retrievers import NoRetriever

FUSIONS = ("rrf", "weighted")
_NOT_MEMBERS = ("none", "mixed", "selected", "hybrid")


def fuse(rankings: Sequence[Ranking], fusion: str, weights: Sequence[float], rrf_k: float, k: int) -> Ranking:
    """The top `k` of the fused `rankings` (see the module docstring)."""
    totals: dict[int, float] = {}
    for ranking, weight in zip(rankings, weights, strict=True):
        if fusion == "rrf":
            parts = weight / (rrf_k + np.arange(1, len(ranking.items) + 1))
        else:
            scores = ranking.scores.astype(np.float64)
            spread = float(scores.max() - scores.min()) if len(scores) else 0.0
            parts = weight * ((scores - scores.min()) / spread if spread > 0 else np.ones(len(scores)))
        for item, part in zip(ranking.items.tolist(), parts.tolist(), strict=True):
            totals[item] = totals.get(item, 0.0) + part
    items = np.fromiter(totals, dtype=np.int64, count=len(totals))
    scores = np.fromiter(totals.values(), dtype=np.float64, count=len(totals))
    order = np.argsort(-scores, kind="stable")[:k]  # stable: ties in order of first appearance
    return Ranking.of(items[order], scores[order])


@dataclass
class HybridRetriever(NoRetriever):
    """``hybrid``: the members' rankings fused; `source` gives a member's cached ranking of a
    question (set by the facade), else the members rank on the view themselves."""

    name: str = "hybrid"
    members: list[Retriever] = field(default_factory=list)
    fusion: str = "rrf"
    rrf_k: float = 60.0
    weights: list[float] | None = None
    depth: int = 100
    source: Callable[[SplitView, int, int], Ranking] | None = field(default=None, repr=False, compare=False)

    def __post_init__(self) -> None:
        if len(self.members) < 2:
            raise ConfigError("retriever hybrid needs two or more retrieval.hybrid_members")
        if self.fusion not in FUSIONS:
            raise ConfigError(f"retrieval.hybrid_fusion={self.fusion!r}; choose one of {', '.join(FUSIONS)}")
        if self.weights is not None and len(self.weights) != len(self.members):
            raise ConfigError(
                f"retrieval.hybrid_weights has {len(self.weights)} values for {len(self.members)} members"
            )
        if self.rrf_k < 0:
            raise ConfigError(f"retrieval.hybrid_rrf_k must be >= 0, got {self.rrf_k}")
        self.dense = any(member.dense for member in self.members)

    def settings(self) -> dict:
        return {
            "name": self.name,
            "members": [member.settings() for member in self.members],
            "fusion": self.fusion,
            "rrf_k": self.rrf_k,
            "weights": self.weights,
            "depth": self.depth,
        }

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        depth = self.depth if self.depth > 0 else len(view.candidates(q))
        depth = max(depth, k)
        rankings = [
            self.source(view, m, q) if self.source else member.rank(view, q, depth)
            for m, member in enumerate(self.members)
        ]
        return fuse(rankings, self.fusion, self.weights or [1.0] * len(self.members), self.rrf_k, k)


def member_configs(config: Any) -> list[Any]:
    """Each member's `RetrievalConfig`: the hybrid's, with the member's name and ``k_max`` the
    fusion depth (at least the hybrid's own k_max; -1 when either is -1)."""
    depth = -1 if config.hybrid_depth <= 0 or config.k_max == -1 else max(config.hybrid_depth, config.k_max)
    configs = []
    for name in config.hybrid_members:
        if name in _NOT_MEMBERS:
            raise ConfigError(f"retrieval.hybrid_members: {name!r} cannot be a member of a hybrid")
        configs.append(dataclasses.replace(config, retriever=name, k_max=depth, rerank=None))
    return configs


def prepare_members(
    prepare: Callable[..., dict], task: Any, data_dir: Any, splits: Any, config: Any, cache_dir: Any, **kw: Any
) -> list[dict]:
    """Prepare (or reuse) each member's results cache with `prepare` (`prepare_retrieval`)."""
    return [prepare(task, data_dir, splits, member, cache_dir, **kw) for member in member_configs(config)]


def attach_source(retriever: HybridRetriever, config: Any, open_results: Callable[[str, Any], tuple]) -> None:
    """Make `retriever` read its members' cached rankings (prepared by `prepare_members`);
    `open_results(split, member config)` gives a member's (results, index manifest).

    Raises:
        CacheError: a member's cache is missing, or was built from other questions files.
    """
    loaded: dict[tuple[str, int], Any] = {}
    configs = member_configs(config)

    def source(view: SplitView, m: int, q: int) -> Ranking:
        if (view.split, m) not in loaded:
            opened: tuple[Any, dict] = open_results(view.split, configs[m])
            results, manifest = opened
            mine = view.index.manifest
            if (
                manifest["key"]["inputs"] != mine["key"]["inputs"]
                or manifest["counts"]["items"] != mine["counts"]["items"]
            ):
                raise CacheError(
                    f"hybrid member {configs[m].retriever}: its cache was built from other questions files"
                )
            if results.question_ids.tolist() != view.tables.question_ids.tolist():
                raise CacheError(f"hybrid member {configs[m].retriever}: its {view.split} questions differ")
            loaded[view.split, m] = results
        results = loaded[view.split, m]
        rows = slice(int(results.offsets[q]), int(results.offsets[q + 1]))
        return Ranking(results.items[rows], results.scores[rows])

    retriever.source = source


__all__ = ["FUSIONS", "HybridRetriever", "attach_source", "fuse", "member_configs", "prepare_members"]
