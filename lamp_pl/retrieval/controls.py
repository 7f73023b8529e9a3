"""Controls of the user-profile study: other users' items in place of the question's own profile.

``other_users_random`` (no personalization, no retrieval), ``other_users_bm25`` (no
personalization, with retrieval) and ``mixed`` (inputs of one retriever's items paired with the
outputs of another's); `lamp_pl.retrieval.registry.make_retriever` builds them by name.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from lamp_pl.errors import ConfigError
from lamp_pl.retrieval.protocol import Ranking, Retriever, SplitView
from lamp_pl.retrieval.retrievers import BM25Retriever, DenseRetriever, NoRetriever, RandomRetriever


def sample_other_users(view: SplitView, q: int, size: int, rng: np.random.Generator) -> np.ndarray:
    """`size` distinct items of users other than q's, uniformly over all other users' item entries
    (so users are weighted by profile size), never an item whose id or text one of q's own
    items has."""
    index, user = view.index, view.user(q)
    lo, hi = int(index.user_offsets[user]), int(index.user_offsets[user + 1])
    own = index.user_items[lo:hi]
    own_ids = {view.item(int(r)).get("id") for r in own}
    own_texts = {int(index.item_text[r]) for r in own}
    n_pool = len(index.user_items) - (hi - lo)
    chosen: dict[int, None] = {}

    def consider(position: int) -> None:
        row = int(index.user_items[position if position < lo else position + hi - lo])
        if row not in chosen and int(index.item_text[row]) not in own_texts and view.item(row).get("id") not in own_ids:
            chosen[row] = None

    if n_pool <= 8 * size + 1024:  # small pool: an exact shuffle
        for position in rng.permutation(n_pool):
            if len(chosen) == size:
                break
            consider(int(position))
    else:  # large pool: draw positions until enough survive (rejections are rare there)
        seen: set[int] = set()
        while len(chosen) < size and len(seen) < n_pool:
            for position in rng.integers(0, n_pool, size=2 * (size - len(chosen)) + 8).tolist():
                if position not in seen and len(chosen) < size:
                    seen.add(position)
                    consider(position)
    return np.fromiter(chosen, dtype=np.int64, count=len(chosen))


@dataclass
class OtherUsersRandom(RandomRetriever):
    """``other_users_random`` (non-personalized, no retrieval): k random items of other users."""

    name: str = "other_users_random"

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        return Ranking.of(sample_other_users(view, q, k, view.rng(q, self.seed, self.name)))


@dataclass
class OtherUsersBM25(BM25Retriever):
    """``other_users_bm25`` (non-personalized, with retrieval): BM25 over a seeded random pool of
    other users' items; pool size `pool` or, when 0, the split's mean profile size (rounded)."""

    name: str = "other_users_bm25"
    seed: int = 0
    pool: int = 0

    def settings(self) -> dict:
        return {**super().settings(), "seed": self.seed, "pool": self.pool}

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        size = self.pool or max(1, round(view.mean_profile_size))
        return self.top(view, q, sample_other_users(view, q, size, view.rng(q, self.seed, self.name)), k)


@dataclass
class MixedRetriever(NoRetriever):
    """``mixed``: rank i pairs retriever A's item i (its input part) with retriever B's item i
    (its output part, `Task.output_field`); as many pairs as the shorter list; A's scores."""

    name: str = "mixed"
    inputs: Retriever = field(default_factory=DenseRetriever)
    outputs: Retriever = field(default_factory=BM25Retriever)

    def __post_init__(self) -> None:
        self.dense = self.inputs.dense or self.outputs.dense

    def settings(self) -> dict:
        return {"name": self.name, "inputs": self.inputs.settings(), "outputs": self.outputs.settings()}

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        if view.task.output_field is None:
            raise ConfigError(f"{view.task.name} has no output field, so `mixed` retrieval does not apply")
        a, b = self.inputs.rank(view, q, k), self.outputs.rank(view, q, k)
        n = min(len(a.items), len(b.items))
        return Ranking(a.items[:n], a.scores[:n], b.items[:n])


__all__ = ["MixedRetriever", "OtherUsersBM25", "OtherUsersRandom", "sample_other_users"]
