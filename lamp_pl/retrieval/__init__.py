"""Retrieval over LaMP profiles: encoder, per-user FAISS index, retrievers, and the results cache.

The DataModule and the commands use the facade: `prepare_retrieval` (build or validate caches,
DDP-aware; in ``prepare_data``) and `load_retrieved` (numpy loads and slicing only; in ``setup``).
"""

from lamp_pl.retrieval.build import build_profile_index
from lamp_pl.retrieval.config import RETRIEVERS, RetrievalConfig, RetrieverName
from lamp_pl.retrieval.encoder import Encoder, EncoderSettings
from lamp_pl.retrieval.index import CacheError, ProfileIndex
from lamp_pl.retrieval.registry import make_retriever
from lamp_pl.retrieval.results import RetrievalResults, Retrieved, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.retrievers import Ranking, Retriever, SplitView, resolve_k

__all__ = [
    "RETRIEVERS",
    "CacheError",
    "Encoder",
    "EncoderSettings",
    "ProfileIndex",
    "Ranking",
    "RetrievalConfig",
    "RetrieverName",
    "RetrievalResults",
    "Retrieved",
    "Retriever",
    "SplitView",
    "build_profile_index",
    "load_retrieved",
    "make_retriever",
    "prepare_retrieval",
    "resolve_k",
]
