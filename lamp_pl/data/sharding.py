"""How the data pipeline shares work between processes: samplers and one failure collective.

Plain PyTorch only (no Lightning): the Lightning shell (`lamp_pl.datamodule`) passes its
trainer's rank, world size and strategy in; any object with the three methods of `Collective`
(a Lightning strategy, or a bare process group's wrapper) serves.
"""

from __future__ import annotations

from collections.abc import Iterator, Sized
from typing import Any, Protocol

from torch.utils.data import Dataset, DistributedSampler


class Collective(Protocol):
    """The collectives the pipeline needs of a distributed strategy (Lightning's names)."""

    def barrier(self, name: str | None = None) -> None:
        """Wait until every rank gets here."""

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002 -- Lightning's name
        """Every rank's `decision`, and-ed (`all`) or or-ed."""

    def broadcast(self, obj: Any, src: int = 0) -> Any:
        """Rank `src`'s `obj` on every rank."""


def training_sampler(dataset: Dataset, seed: int, rank: int = 0, world_size: int = 1) -> DistributedSampler:
    """The training order: a `DistributedSampler(shuffle=True, seed=seed)` on every world size.

    Each epoch draws one permutation of the whole split from ``torch.randperm`` seeded with
    ``seed + epoch`` (Lightning calls `set_epoch` before every epoch), pads it to a multiple of
    `world_size` by repeating its first indices, and gives rank r the positions r, r + world_size,
    ... So the batch order is a function of (seed, epoch, world size) alone, whatever the Lightning
    version, the global RNG state or a resume from a checkpoint; and with world size 1 the one
    device sees the same permutation, so a step of W ranks with batch size B covers the same
    samples as a step of one device with batch size W x B.
    """
    return DistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=False)


class UnpaddedShards(DistributedSampler):
    """Evaluation order under DDP: rank r gets positions r, r + W, ..., with no padding, so every
    question is scored and written exactly once (ranks may differ by one batch in length)."""

    def __init__(self, dataset: Dataset, num_replicas: int, rank: int) -> None:
        """
        Args:
            dataset: A sized dataset.
            num_replicas: The world size.
            rank: This process's rank.
        """
        super().__init__(dataset, num_replicas=num_replicas, rank=rank, shuffle=False, drop_last=False)
        if not isinstance(dataset, Sized):
            raise TypeError("UnpaddedShards needs a dataset with a length")
        self.total_size = len(dataset)
        self.num_samples = len(range(rank, self.total_size, num_replicas))

    def __iter__(self) -> Iterator[int]:
        return iter(range(self.rank, self.total_size, self.num_replicas))


def eval_sampler(dataset: Dataset, rank: int = 0, world_size: int = 1) -> UnpaddedShards | None:
    """The sampler of an evaluation loader: none on one process, else `UnpaddedShards`."""
    return UnpaddedShards(dataset, world_size, rank) if world_size > 1 else None


def agree_on_failure(strategy: Collective, rank: int, error: BaseException | None) -> None:
    """A collective every rank calls after work that may fail on some ranks only: if any rank
    failed, every rank raises (the failed one its own error, the others one naming rank 0's),
    instead of the healthy ranks waiting forever at the next barrier."""
    failed = strategy.reduce_boolean_decision(error is not None, all=False)
    message = strategy.broadcast(f"{type(error).__name__}: {error}" if error is not None else None, src=0)
    if error is not None:
        raise error
    if failed:
        raise RuntimeError(
            f"rank {rank}: data preparation failed on another rank" + (f" (rank 0: {message})" if message else "")
        )


__all__ = ["Collective", "UnpaddedShards", "agree_on_failure", "eval_sampler", "training_sampler"]
