"""`RetrievalView`: the retrieval view of one split, the one object that names its cached ranking.

A split's retrieved items are fixed by seven values: the task, the data folder, the split, the
retrieval settings, the cache folder, k and the rank offset. The data pipeline makes the view
(`LaMPData.view`), and the item scorer, the attribution, the retriever-utility scorer and the
selector build or read the same caches through it, instead of passing the seven values to
`prepare_retrieval` and `load_retrieved` one by one. The task is a resolved `Task`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from lamp_pl.cache import stable_hash
from lamp_pl.retrieval.config import RetrievalConfig
from lamp_pl.retrieval.dated import retrieval_task
from lamp_pl.retrieval.index import read_manifest
from lamp_pl.retrieval.registry import make_retriever
from lamp_pl.retrieval.results import (
    Retrieved,
    cache_folder,
    load_retrieved,
    prepare_retrieval,
    results_fingerprint,
    results_key,
)
from lamp_pl.tasks import Task


@dataclass(frozen=True)
class RetrievalView:
    """Which ranked profile items the questions of one split get.

    Attributes are those of `load_retrieved`; a view does no work until a method is called.
    """

    task: Task
    """The task (its spec decides the data files and the item fields)."""
    data_dir: Path
    """The data folder (``<root>/<task>/...`` or the task folder itself)."""
    split: str
    """The split whose questions are ranked."""
    config: RetrievalConfig
    """Retriever and encoder settings."""
    cache_dir: Path
    """Where the index and the results caches live."""
    k: float = 1
    """Items per question, or a fraction of the question's profile in (0, 1)."""
    offset: int = 0
    """Ranked items skipped first (rank-offset study)."""

    def top(self, k: float, offset: int = 0) -> RetrievalView:
        """The same ranking cut at another k (and offset)."""
        return dataclasses.replace(self, k=k, offset=offset)

    def using(self, config: RetrievalConfig) -> RetrievalView:
        """The same split, k and offset ranked by other retrieval settings (a pool member)."""
        return dataclasses.replace(self, config=config)

    def prepare(
        self,
        *,
        rank: int = 0,
        world_size: int = 1,
        barrier: Callable[[], None] | None = None,
        progress: bool = True,
    ) -> dict:
        """Build or validate the index and this split's results cache (see `prepare_views`)."""
        return prepare_views([self], rank=rank, world_size=world_size, barrier=barrier, progress=progress)

    def retrieved(self) -> list[Retrieved]:
        """Each question's top-k items after the offset, from the cache (never encodes)."""
        return load_retrieved(self.task, self.data_dir, self.split, self.config, self.cache_dir, self.k, self.offset)

    def fingerprint(self) -> str:
        """A hash of the cached results this split's prompts read (see `results_fingerprint`)."""
        return results_fingerprint(self.task, self.split, self.config, self.cache_dir)

    @property
    def folder(self) -> Path:
        """The retrieval cache folder of this task and retriever."""
        task = retrieval_task(self.task, self.config)  # the dated task's own index under use_date
        return cache_folder(self.cache_dir, task, self.config, make_retriever(self.config.retriever, self.config))

    def results_key(self) -> dict:
        """The key of this split's results file (names the index it was ranked on)."""
        retriever = make_retriever(self.config.retriever, self.config)
        return results_key(stable_hash(read_manifest(self.folder)["key"]), self.split, retriever, self.config)


def prepare_views(
    views: Sequence[RetrievalView],
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    progress: bool = True,
) -> dict:
    """One `prepare_retrieval` for the splits of `views` (one index build serves them all).

    Every DDP rank calls it. The views must share task, data folder, settings and cache folder.

    Returns:
        `prepare_retrieval`'s summary.
    """
    if not views:
        raise ValueError("prepare_views needs at least one view")
    first = views[0]
    source = (first.task.name, first.data_dir, first.config, first.cache_dir)
    for view in views[1:]:
        if (view.task.name, view.data_dir, view.config, view.cache_dir) != source:
            raise ValueError(f"views of different sources cannot share one build: {view} vs {first}")
    return prepare_retrieval(
        first.task,
        first.data_dir,
        list(dict.fromkeys(view.split for view in views)),
        first.config,
        first.cache_dir,
        rank=rank,
        world_size=world_size,
        barrier=barrier,
        progress=progress,
    )


__all__ = ["RetrievalView", "prepare_views"]
