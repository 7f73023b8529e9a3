"""How the data pipeline's loaders share a split between processes: the training and the
evaluation samplers, in plain PyTorch (no Lightning: the shell, `lamp_pl.lightning.datamodule`, passes its
trainer's rank and world size in)."""

from __future__ import annotations

from collections.abc import Iterator, Sized

from torch.utils.data import Dataset, DistributedSampler


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


__all__ = ["UnpaddedShards", "eval_sampler", "training_sampler"]
