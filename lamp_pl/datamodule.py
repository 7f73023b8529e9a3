"""LaMPDataModule: retrieval-augmented, tokenized LaMP batches for a seq2seq model.

`prepare_data` does the expensive work once and caches it on disk: validating the data, encoding
profiles and building the per-user indexes, ranking every split's items, and tokenizing the
prompts. `setup` only loads those caches. Under DDP the one step worth sharding, encoding, runs at
the start of `setup` on every rank (a no-op once cached), because `prepare_data` runs on one
process per node while the others wait.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import lightning as L
import torch
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, Sampler

import lamp_pl
from lamp_pl.cache import file_sha256_cached, stable_hash
from lamp_pl.data.lamp import load_split, split_files
from lamp_pl.data.synthetic import SyntheticSpec, write_synthetic
from lamp_pl.prompts import PromptOptions, build_prompt
from lamp_pl.retrieval import RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.tasks import get_task
from lamp_pl.tokenized import TokenizedSplit, collate

STAGE_SPLITS = {"fit": ("train_split", "val_split"), "validate": ("val_split",), "test": ("test_split",),
                "predict": ("predict_split",)}


class EpochShuffleSampler(Sampler[int]):
    """A permutation that is a function of (seed, epoch) alone, so a run resumed from a
    checkpoint sees the same batches as an uninterrupted one (Lightning calls `set_epoch`)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed * 100_003 + self.epoch)
        return iter(torch.randperm(self.size, generator=generator).tolist())

    def __len__(self) -> int:
        return self.size


class LaMPDataModule(L.LightningDataModule):
    """Reads a LaMP task, retrieves each question's profile items and emits prompt batches."""

    def __init__(
        self,
        task: str = "LaMP_2",
        data_dir: str = "data/lamp",
        cache_dir: str = ".lamp_cache",
        tokenizer: str = "google/flan-t5-base",
        k: float = 1,
        offset: int = 0,
        retrieval: RetrievalConfig = RetrievalConfig(),
        prompt: PromptOptions = PromptOptions(),
        max_input_length: int = 512,
        max_target_length: int = 64,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        num_workers: int = 0,
        train_split: str = "train",
        val_split: str = "dev",
        test_split: str = "dev",
        predict_split: str = "test",
        seed: int = 0,
        synthetic: SyntheticSpec | None = None,
    ) -> None:
        """
        Args:
            task: LaMP task name (`LaMP_1` .. `LaMP_7`, `LaMP_2N`) or a custom task's .json spec.
            data_dir: Folder holding `<task>/<split>_questions.json` (or `<task>/<split>/...`).
            cache_dir: Where indexes, retrieval results and tokenized prompts are cached.
            tokenizer: The generator's tokenizer (hub name or folder).
            k: Profile items per prompt: 0 = no personalization, 0 < k < 1 = that fraction of
                the profile.
            offset: Skip this many top-ranked items (rank-offset study).
            retrieval: Retriever and encoder settings.
            prompt: Order, ablation and user-context options of the prompt.
            max_input_length: Token budget of a prompt; longer inputs are truncated.
            max_target_length: Longest tokenized gold output in training.
            batch_size: Training batch size per device.
            eval_batch_size: Evaluation batch size per device (default: `batch_size`).
            num_workers: DataLoader worker processes.
            train_split: Split used for training.
            val_split: Split used for validation.
            test_split: Split used by `test` (LaMP hides test golds, so `dev` by default).
            predict_split: Split used by `predict`.
            seed: Seed of training-batch shuffling.
            synthetic: Write synthetic LaMP data into `data_dir` first (offline demo, tests).
        """
        super().__init__()
        self.save_hyperparameters()
        self.task_name, self.data_dir, self.cache_dir = task, data_dir, Path(cache_dir)
        self.tokenizer_name, self.k, self.offset = tokenizer, k, offset
        self.retrieval = retrieval
        self.prompt = prompt
        self.max_input_length, self.max_target_length = max_input_length, max_target_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        self.num_workers, self.seed, self.synthetic = num_workers, seed, synthetic
        self.train_split, self.val_split = train_split, val_split
        self.test_split, self.predict_split = test_split, predict_split
        self.datasets: dict[str, TokenizedSplit] = {}
        self._tokenizer = None

    @property
    def task(self):
        return get_task(self.task_name)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            from transformers import AutoTokenizer

            self._tokenizer = AutoTokenizer.from_pretrained(self.tokenizer_name)
        return self._tokenizer

    @property
    def uses_retrieval(self) -> bool:
        return self.k != 0 and self.retrieval.retriever != "none"

    def splits_for(self, stage: str | None) -> list[str]:
        names = STAGE_SPLITS.get(stage or "", tuple(a for attrs in STAGE_SPLITS.values() for a in attrs))
        return list(dict.fromkeys(getattr(self, name) for name in names))

    def _world(self) -> tuple[int, int]:
        trainer = self.trainer
        return (trainer.global_rank, trainer.world_size) if trainer is not None else (0, 1)

    def write_synthetic_data(self) -> None:
        """Write the configured synthetic data into `data_dir` (unchanged files are left alone)."""
        if self.synthetic is not None:
            write_synthetic(self.data_dir, dataclasses.replace(self.synthetic, task=self.task.name))

    def prepare_data(self) -> None:
        """Build every cache the configured splits need (single process: encoding included)."""
        self.write_synthetic_data()
        if self._world()[1] == 1:
            self.build(self.splits_for(None))
        else:
            for split in self.splits_for(None):
                load_split(self.data_dir, self.task, split)  # fail fast on bad data before ranks start work

    def build(self, splits: list[str], rank: int = 0, world_size: int = 1, barrier=None) -> dict | None:
        """Encode, index, rank and tokenize `splits` (a no-op for what is cached already)."""
        splits = [s for s in splits if self._has_split(s)]
        summary = None
        if self.uses_retrieval:
            summary = prepare_retrieval(self.task, self.data_dir, splits, self.retrieval, self.cache_dir,
                                        rank=rank, world_size=world_size, barrier=barrier)
        if rank == 0:
            for split in splits:
                self._tokenized(split, build=True)
        if barrier is not None:
            barrier()
        return summary

    def _has_split(self, split: str) -> bool:
        try:
            split_files(self.data_dir, self.task, split)
            return True
        except FileNotFoundError:
            return False

    def setup(self, stage: str | None = None) -> None:
        splits = self.splits_for(stage)
        rank, world_size = self._world()
        if world_size > 1:
            self.build(splits, rank, world_size, barrier=self.trainer.strategy.barrier)
        for split in splits:
            if split not in self.datasets and self._has_split(split):
                self.datasets[split] = self._tokenized(split, build=False)

    def _cache_key(self, split: str) -> str:
        files = [p for p in split_files(self.data_dir, self.task, split) if p is not None]
        settings = {"version": lamp_pl.__version__, "task": self.task.name, "split": split,
                    "tokenizer": self.tokenizer_name, "k": self.k, "offset": self.offset,
                    "retrieval": dataclasses.asdict(self.retrieval) if self.uses_retrieval else None,
                    "prompt": dataclasses.asdict(self.prompt), "max_input_length": self.max_input_length,
                    "max_target_length": self.max_target_length,
                    "data": [file_sha256_cached(path) for path in files]}
        return stable_hash(settings)

    def _tokenized(self, split: str, build: bool) -> TokenizedSplit:
        folder = self.cache_dir / self.task.name / "prompts" / f"{split}-{self._cache_key(split)}"
        if TokenizedSplit.exists(folder):
            return TokenizedSplit.load(folder)
        if not build:
            raise RuntimeError(f"no tokenized cache for split {split!r} at {folder}: prepare_data has not run "
                               "(call datamodule.prepare_data() or use the Trainer)")
        questions = load_split(self.data_dir, self.task, split)
        retrieved = (load_retrieved(self.task, self.data_dir, split, self.retrieval, self.cache_dir, self.k,
                                    self.offset) if self.uses_retrieval else None)
        prompts, item_ids = [], []
        for i, question in enumerate(questions):
            items = retrieved[i].items if retrieved else []
            prompts.append(build_prompt(self.task, question.input, items, self.tokenizer, self.max_input_length,
                                        self.prompt, question_id=question.id, user_id=question.user))
            item_ids.append(retrieved[i].item_ids if retrieved else [])
        return TokenizedSplit.build(folder, self.tokenizer, questions, prompts, item_ids, self.max_input_length,
                                    self.max_target_length)

    def prompts(self, split: str) -> list[str]:
        """The prompts of a split, as the model reads them (for inspection)."""
        return self._tokenized(split, build=True).prompts

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup(None)
        dataset = self.datasets[split]
        pad = self.tokenizer.pad_token_id
        kwargs = dict(num_workers=self.num_workers, collate_fn=functools.partial(collate, pad_token_id=pad),
                      persistent_workers=self.num_workers > 0)
        if train:
            return DataLoader(dataset, batch_size=self.batch_size, sampler=EpochShuffleSampler(len(dataset), self.seed),
                              **kwargs)
        rank, world_size = self._world()
        # No padding of shards: each question is scored and written exactly once under DDP.
        sampler = UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False) \
            if world_size > 1 else None
        return DataLoader(dataset, batch_size=self.eval_batch_size, sampler=sampler, **kwargs)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, train=False)
