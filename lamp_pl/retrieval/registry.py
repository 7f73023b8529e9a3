"""The registry of retrievers: each name of `RetrieverName` and how to build it from a config."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from lamp_pl.errors import ConfigError
from lamp_pl.retrieval.config import RETRIEVERS
from lamp_pl.retrieval.controls import MixedRetriever, OtherUsersBM25, OtherUsersRandom
from lamp_pl.retrieval.hybrid import HybridRetriever, member_configs
from lamp_pl.retrieval.protocol import Retriever
from lamp_pl.retrieval.rerank import RerankedRetriever, first_stage_config
from lamp_pl.retrieval.retrievers import (
    BM25Retriever,
    DenseRetriever,
    NoRetriever,
    RandomRetriever,
    RecencyDenseRetriever,
    RecencyRetriever,
)


def make_retriever(name: str, config: Any) -> Retriever:
    """The retriever `name`, configured from a `RetrievalConfig` (or anything with its fields);
    with ``rerank`` set, its lists reordered by that cross-encoder (`lamp_pl.retrieval.rerank`)."""
    first = _make(name, config)
    if not getattr(config, "rerank", None) or name == "none":
        return first
    if name == "mixed":  # its lists pair two retrievers' items: one score cannot reorder both
        raise ConfigError("retrieval.rerank does not apply to the `mixed` retriever")
    load = {k: getattr(config, k) for k in ("precision", "device", "trust_remote_code")}
    return RerankedRetriever(
        first=first,
        model=str(config.rerank),
        depth=first_stage_config(config).k_max,
        batch_size=config.rerank_batch_size,
        max_length=config.rerank_max_length,
        load=load,
    )


def _make(name: str, config: Any) -> Retriever:
    bm25 = {"tokenizer": config.bm25_tokenizer, "method": config.bm25_method, "impl": config.bm25_impl}
    makers: dict[str, Callable[[], Retriever]] = {
        "none": NoRetriever,
        "contriever": DenseRetriever,
        "recency": RecencyRetriever,
        "recency_contriever": RecencyDenseRetriever,
        "bm25": lambda: BM25Retriever(**bm25),
        "random": lambda: RandomRetriever(seed=config.seed, with_replacement=config.with_replacement),
        "other_users_random": lambda: OtherUsersRandom(seed=config.seed),
        "other_users_bm25": lambda: OtherUsersBM25(**bm25, seed=config.seed, pool=config.other_users_pool),
        "mixed": lambda: MixedRetriever(
            inputs=_component(config.mixed_inputs, config), outputs=_component(config.mixed_outputs, config)
        ),
        "hybrid": lambda: HybridRetriever(
            members=[make_retriever(c.retriever, c) for c in member_configs(config)],
            fusion=config.hybrid_fusion,
            rrf_k=float(config.hybrid_rrf_k),
            weights=None if config.hybrid_weights is None else [float(w) for w in config.hybrid_weights],
            depth=config.hybrid_depth,
        ),
    }
    if name == "selected":
        raise ValueError(
            "retriever 'selected' ranks nothing itself: the retrieval facade takes each question's items "
            "from the retriever its choices file names (lamp_pl.retrieval.selected)"
        )
    if name not in makers:
        raise ConfigError(f"unknown retriever {name!r}; choose one of {', '.join(RETRIEVERS)}")
    return makers[name]()


def _component(name: str, config: Any) -> Retriever:
    if name in ("mixed", "hybrid"):
        raise ConfigError(f"a `mixed` retriever cannot take its inputs or outputs from a `{name}`")
    return _make(name, config)


__all__ = ["RETRIEVERS", "make_retriever"]
