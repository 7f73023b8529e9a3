"""Batches of (query, candidate texts, utilities) for `RetrieverModule`, and its quiet trainer.

The training order is one permutation per (seed, epoch) cut to a multiple of the world size;
rank r takes every W-th question from position r. A step of W ranks with batch b then covers
exactly the questions of one batch of b * W in a single process, so DDP and one process train
the same model (up to float summation order).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import lightning as L
import torch
from torch.utils.data import DataLoader, Dataset, Sampler

from lamp_pl.errors import MissingDataError
from lamp_pl.learned.retriever_module import RetrieverModule
from lamp_pl.learned.scoring import load_utilities
from lamp_pl.resolve import resolve


class UtilityDataset(Dataset):
    """One row per question with at least two scored candidates (one alone has no ranking)."""

    def __init__(self, records: list[dict], use_metric: bool = False) -> None:
        field = "metrics" if use_metric else "log_likelihoods"
        self.rows = [
            {"query": r["query"], "texts": r["item_texts"], "utilities": r[field], "group": r.get("group", r["user"])}
            for r in records
            if len(r["item_texts"]) >= 2
        ]

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index: int) -> dict:
        return self.rows[index]


def collate_utilities(rows: list[dict]) -> dict:
    """Pad candidates; each distinct item text appears once in `texts`, `index` points into it."""
    texts: dict[str, int] = {}
    width = max(len(r["texts"]) for r in rows)
    index = torch.full((len(rows), width), -1, dtype=torch.long)
    utilities = torch.zeros((len(rows), width))
    for i, row in enumerate(rows):
        for j, (text, utility) in enumerate(zip(row["texts"], row["utilities"])):
            index[i, j] = texts.setdefault(text, len(texts))
            utilities[i, j] = float(utility)
    return {
        "queries": [r["query"] for r in rows],
        "texts": list(texts),
        "index": index,
        "utilities": utilities,
        "mask": index >= 0,
    }


class StridedShuffleSampler(Sampler[int]):
    """This rank's share of a (seed, epoch) permutation: positions r, r + W, r + 2W, ...

    With `groups` (e.g. each question's user) the permutation shuffles the groups and keeps each
    group's questions together: questions of one user share their candidates, so a batch then
    encodes each shared item once (the in-batch deduplication pays off).
    """

    def __init__(
        self,
        size: int,
        seed: int,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        groups: list[str] | None = None,
    ) -> None:
        self.size, self.seed, self.rank, self.world_size, self.shuffle, self.epoch = (
            size,
            seed,
            rank,
            world_size,
            shuffle,
            0,
        )
        self.groups = groups

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def _order(self) -> torch.Tensor:
        if not self.shuffle:
            return torch.arange(self.size)
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        if self.groups is None:
            return torch.randperm(self.size, generator=generator)
        members: dict[str, list[int]] = {}
        for index, group in enumerate(self.groups):
            members.setdefault(group, []).append(index)
        names = list(members)
        return torch.tensor(
            [i for g in torch.randperm(len(names), generator=generator).tolist() for i in members[names[g]]],
            dtype=torch.long,
        )

    def __iter__(self):
        order = self._order()
        usable = self.size - self.size % self.world_size
        return iter(order[:usable][self.rank :: self.world_size].tolist())

    def __len__(self) -> int:
        return self.size // self.world_size


class UtilityDataModule(L.LightningDataModule):
    """Reads `score_items` outputs for training and validation."""

    def __init__(
        self,
        train_utilities: str,
        val_utilities: str | None = None,
        batch_size: int = 8,
        use_metric: bool = False,
        seed: int = 0,
        group_by_user: bool = False,
    ) -> None:
        """
        Args:
            train_utilities: ``utilities.jsonl`` of the training split.
            val_utilities: ``utilities.jsonl`` of the validation split (dev); None = no validation.
            batch_size: Questions per batch and device.
            use_metric: Distil the task metric of generations instead of the log-likelihoods.
            seed: Seed of the training order.
            group_by_user: Shuffle users, not questions, keeping a user's questions together (a
                user's questions share candidates: far fewer texts to encode per batch); users
                are the records' ``group`` (questions with the same profile).
        """
        super().__init__()
        self.save_hyperparameters()

    def setup(self, stage: str | None = None) -> None:
        hp = self.hparams
        self.train_set = UtilityDataset(load_utilities(hp.train_utilities), hp.use_metric)
        self.val_set = UtilityDataset(load_utilities(hp.val_utilities), hp.use_metric) if hp.val_utilities else None

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def _loader(self, dataset: UtilityDataset, shuffle: bool) -> DataLoader:
        rank, world_size = self._world()
        groups = [row["group"] for row in dataset.rows] if self.hparams.group_by_user else None
        sampler = StridedShuffleSampler(len(dataset), self.hparams.seed, rank, world_size, shuffle, groups)
        return DataLoader(dataset, batch_size=self.hparams.batch_size, sampler=sampler, collate_fn=collate_utilities)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_set, shuffle=True)

    def val_dataloader(self) -> DataLoader | list:
        return self._loader(self.val_set, shuffle=False) if self.val_set is not None else []


def quiet_trainer(
    out_dir: str | Path, max_epochs: int, trainer: dict[str, Any] | None = None, **defaults: Any
) -> L.Trainer:
    """A one-CPU `lightning.Trainer` in `out_dir` without logger, checkpoints or model summary;
    `defaults` add settings and `trainer` (the caller's extra arguments) overrides them all."""
    options = {
        "max_epochs": max_epochs,
        "default_root_dir": str(out_dir),
        "logger": False,
        "enable_checkpointing": False,
        "enable_model_summary": False,
        "accelerator": "cpu",
        "devices": 1,
        **defaults,
        **(trainer or {}),
    }
    return L.Trainer(**options)


def train_encoder(
    module: RetrieverModule,
    data: UtilityDataModule,
    out_dir: str | Path,
    max_epochs: int,
    trainer: dict[str, Any] | None = None,
) -> Path:
    """Fit a retriever module (KD or RL) on utilities and save its encoder to ``<out_dir>/encoder``."""
    fitter = quiet_trainer(out_dir, max_epochs, trainer, use_distributed_sampler=False)
    fitter.fit(module, datamodule=data)
    folder = Path(out_dir) / "encoder"
    if fitter.is_global_zero:
        module.save_encoder(folder)
    fitter.strategy.barrier()
    return folder


def check_inputs(encoder: str, train_utilities: str | Path, val_utilities: str | Path | None) -> None:
    """Resolve the encoder and check the utilities files exist, before any training.

    Raises:
        MissingDataError: a utilities file is missing (or the encoder cannot be resolved).
    """
    resolve(encoder, "encoder", ["config.json"])
    for path in (train_utilities, val_utilities):
        if path is not None and not Path(path).is_file():
            raise MissingDataError(f"{path}: no such utilities file (write it with `lamp-pl score-items`)")


__all__ = [
    "StridedShuffleSampler",
    "UtilityDataModule",
    "UtilityDataset",
    "check_inputs",
    "collate_utilities",
    "quiet_trainer",
    "train_encoder",
]
