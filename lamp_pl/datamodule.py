"""LaMPDataModule: retrieval-augmented, tokenized LaMP batches for a seq2seq model.

`prepare_data` does the expensive work once and caches it on disk: validating the data, encoding
profiles and building the per-user indexes, ranking every split's items, and tokenizing the
prompts. `setup` only loads those caches. Under DDP the one step worth sharding, encoding, runs at
the start of `setup` on every rank (a no-op once cached), because `prepare_data` runs on one
process per node while the others wait. A failure on any rank reaches every rank as an error
(see `agree_on_failure`), so no rank waits forever on a barrier that a failed rank never reaches.
"""

from __future__ import annotations

import dataclasses
import functools
from pathlib import Path

import lightning as L
from lightning.pytorch.overrides.distributed import UnrepeatedDistributedSampler
from torch.utils.data import DataLoader, DistributedSampler

import lamp_pl
from lamp_pl.cache import HASH_STORE, file_sha256_by_state, stable_hash, tokenizer_fingerprint
from lamp_pl.data.batching import EVAL_ORDERS, sorted_eval_dataset
from lamp_pl.data.lamp import split_files
from lamp_pl.data.stages import check_splits_present, stage_splits
from lamp_pl.data.stream import load_questions
from lamp_pl.data.synthetic import SyntheticSpec, write_synthetic
from lamp_pl.prompts import PromptOptions, build_prompt
from lamp_pl.retrieval import RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.results import results_fingerprint
from lamp_pl.studies import check_study_options
from lamp_pl.tasks import get_task
from lamp_pl.tokenized import TokenizedSplit, collate
from lamp_pl.tokenizer import load_tokenizer

STAGE_SPLITS = {
    "fit": ("train_split", "val_split"),
    "validate": ("val_split",),
    "test": ("test_split",),
    "predict": ("predict_split",),
}
PROMPT_CACHE_FORMAT = 2
"""Version of the tokenized-prompt cache; bump it whenever prompts.py or tokenized.py changes
what they write, so no cache of the old code is read by the new."""


def training_sampler(dataset, seed: int, rank: int = 0, world_size: int = 1) -> DistributedSampler:
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


def agree_on_failure(strategy, rank: int, error: BaseException | None) -> None:
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
        max_target_length: int = 512,
        batch_size: int = 16,
        eval_batch_size: int | None = None,
        eval_order: str = "length",
        eval_max_tokens: int | None = None,
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
            max_target_length: Longest tokenized gold output in training (512: the official code
                truncates targets at its max_length).
            batch_size: Training batch size per device.
            eval_batch_size: Evaluation batch size per device (default: `batch_size`).
            eval_order: `length`: validation, test and predict batches of prompts sorted by
                length (`lamp_pl.data.batching`; the predictions file keeps file order);
                `file`: batches in file order.
            eval_max_tokens: Most padded prompt tokens per evaluation batch with
                `eval_order: length` (None: `eval_batch_size` rows only).
            num_workers: DataLoader worker processes.
            train_split: Split used for training.
            val_split: Split used for validation.
            test_split: Split used by `test` (LaMP hides test golds, so `dev` by default).
            predict_split: Split used by `predict`.
            seed: Seed of training-batch shuffling (see `training_sampler`).
            synthetic: Write synthetic LaMP data into `data_dir` first (offline demo, tests).
        """
        super().__init__()
        # Dataclass sections may come back as dicts (from a checkpoint's hyper-parameters).
        retrieval = RetrievalConfig(**retrieval) if isinstance(retrieval, dict) else retrieval
        prompt = PromptOptions(**prompt) if isinstance(prompt, dict) else prompt
        synthetic = SyntheticSpec(**synthetic) if isinstance(synthetic, dict) else synthetic
        self.save_hyperparameters()
        # Plain dicts in the checkpoint, so it loads with torch.load(weights_only=True).
        self.hparams.update(
            retrieval=dataclasses.asdict(retrieval),
            prompt=dataclasses.asdict(prompt),
            synthetic=dataclasses.asdict(synthetic) if synthetic is not None else None,
        )
        self.task_name, self.data_dir, self.cache_dir = task, data_dir, Path(cache_dir)
        self.tokenizer_name, self.k, self.offset = tokenizer, k, offset
        self.retrieval = retrieval
        self.prompt = prompt
        check_study_options(task, k, offset, self.retrieval, prompt)  # no silent no-op options
        self.max_input_length, self.max_target_length = max_input_length, max_target_length
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        if eval_order not in EVAL_ORDERS:
            raise ValueError(f"data.eval_order: {eval_order!r} is not one of {', '.join(EVAL_ORDERS)}")
        self.eval_order, self.eval_max_tokens = eval_order, eval_max_tokens
        self.num_workers, self.seed, self.synthetic = num_workers, seed, synthetic
        self.train_split, self.val_split = train_split, val_split
        self.test_split, self.predict_split = test_split, predict_split
        self.datasets: dict[str, TokenizedSplit] = {}
        self._tokenizer = None
        self._prepare_error: BaseException | None = None

    @property
    def task(self):
        return get_task(self.task_name)

    @property
    def tokenizer(self):
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
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
        """Build every cache the configured splits need (single process: encoding included).

        Under DDP it runs on one process per node while the others wait at Lightning's next
        barrier; an error here is kept and raised on every rank at the start of `setup`.
        """
        if self._world()[1] == 1:
            self.write_synthetic_data()
            check_splits_present(self.data_dir, self.task, stage_splits(self))  # before anything is cached
            self.build(self.splits_for(None))
            return
        try:
            self.write_synthetic_data()
            check_splits_present(self.data_dir, self.task, stage_splits(self))
            for split in self.splits_for(None):
                load_questions(self.data_dir, self.task, split)  # fail fast on bad data before ranks start work
        except Exception as error:  # noqa: BLE001 -- raised on every rank by setup's agree_on_failure
            self._prepare_error = error

    def build(self, splits: list[str], rank: int = 0, world_size: int = 1, strategy=None) -> dict | None:
        """Encode, index, rank and tokenize `splits` (a no-op for what is cached already).

        With a `strategy` (DDP), every rank must call it; rank 0 tokenizes, and an error on any
        rank ends the call with an error on every rank (`agree_on_failure`).
        """
        splits = [s for s in splits if self._has_split(s)]
        summary, error = None, None
        try:
            if self.uses_retrieval:
                summary = prepare_retrieval(
                    self.task,
                    self.data_dir,
                    splits,
                    self.retrieval,
                    self.cache_dir,
                    rank=rank,
                    world_size=world_size,
                    barrier=strategy.barrier if strategy is not None else None,
                )
            if rank == 0:
                for split in splits:
                    self._tokenized(split, build=True)
        except Exception as failure:  # raised on every rank below
            if strategy is None:
                raise
            error = failure
        if strategy is not None:
            agree_on_failure(strategy, rank, error)
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
            error, self._prepare_error = self._prepare_error, None
            agree_on_failure(self.trainer.strategy, rank, error)  # prepare_data ran on local rank 0 only
            self.build(splits, rank, world_size, strategy=self.trainer.strategy)
        for split in splits:
            if split not in self.datasets and self._has_split(split):
                self.datasets[split] = self._tokenized(split, build=False)

    def _cache_key(self, split: str) -> str:
        """Everything that shapes a split's prompts: the cache format, the task's content, the
        tokenizer's files, the options, the data files' content and the retrieval results read."""
        files = [p for p in split_files(self.data_dir, self.task, split) if p is not None]
        task = self.task
        settings = {
            "format": PROMPT_CACHE_FORMAT,
            "version": lamp_pl.__version__,
            "task": task.name,
            "task_spec": task.fingerprint,
            "split": split,
            "tokenizer": tokenizer_fingerprint(self.tokenizer_name),
            "k": self.k,
            "offset": self.offset,
            "retrieval": dataclasses.asdict(self.retrieval) if self.uses_retrieval else None,
            "results": (
                results_fingerprint(task, split, self.retrieval, self.cache_dir) if self.uses_retrieval else None
            ),
            "prompt": dataclasses.asdict(self.prompt),
            "max_input_length": self.max_input_length,
            "max_target_length": self.max_target_length,
            "data": [file_sha256_by_state(path, self.cache_dir / HASH_STORE) for path in files],
        }
        return stable_hash(settings)

    def _tokenized(self, split: str, build: bool) -> TokenizedSplit:
        folder = self.cache_dir / self.task.cache_name / "prompts" / f"{split}-{self._cache_key(split)}"
        if TokenizedSplit.exists(folder):
            return TokenizedSplit.load(folder)
        if not build:
            raise RuntimeError(
                f"no tokenized cache for split {split!r} at {folder}: prepare_data has not run "
                "(call datamodule.prepare_data() or use the Trainer)"
            )
        questions = load_questions(self.data_dir, self.task, split)  # streamed; prompts need no profiles
        retrieved = (
            load_retrieved(self.task, self.data_dir, split, self.retrieval, self.cache_dir, self.k, self.offset)
            if self.uses_retrieval
            else None
        )
        prompts, item_ids = [], []
        for i, question in enumerate(questions):
            items = retrieved[i].items if retrieved else []
            prompts.append(
                build_prompt(
                    self.task,
                    question.input,
                    items,
                    self.tokenizer,
                    self.max_input_length,
                    self.prompt,
                    question_id=question.id,
                    user_id=question.user,
                )
            )
            item_ids.append(retrieved[i].item_ids if retrieved else [])
        return TokenizedSplit.build(
            folder, self.tokenizer, questions, prompts, item_ids, self.max_input_length, self.max_target_length
        )

    def prompts(self, split: str) -> list[str]:
        """The prompts of a split, as the model reads them (for inspection)."""
        return self._tokenized(split, build=True).prompts

    def _loader(self, split: str, train: bool) -> DataLoader:
        if split not in self.datasets:
            self.setup(None)
        dataset = self.datasets[split]
        pad = self.tokenizer.pad_token_id
        kwargs = dict(
            num_workers=self.num_workers,
            collate_fn=functools.partial(collate, pad_token_id=pad),
            persistent_workers=self.num_workers > 0,
        )
        rank, world_size = self._world()
        if train:
            return DataLoader(
                dataset,
                batch_size=self.batch_size,
                sampler=training_sampler(dataset, self.seed, rank, world_size),
                **kwargs,
            )
        if self.eval_order == "length":  # whole batches are what the sampler splits across ranks
            dataset = sorted_eval_dataset(dataset, self.eval_batch_size, self.eval_max_tokens)
            kwargs["batch_size"] = None
        # No padding of shards: each question is scored and written exactly once under DDP.
        sampler = (
            UnrepeatedDistributedSampler(dataset, num_replicas=world_size, rank=rank, shuffle=False)
            if world_size > 1
            else None
        )
        return DataLoader(dataset, **{"batch_size": self.eval_batch_size, **kwargs}, sampler=sampler)

    def train_dataloader(self) -> DataLoader:
        return self._loader(self.train_split, train=True)

    def val_dataloader(self) -> DataLoader:
        return self._loader(self.val_split, train=False)

    def test_dataloader(self) -> DataLoader:
        return self._loader(self.test_split, train=False)

    def predict_dataloader(self) -> DataLoader:
        return self._loader(self.predict_split, train=False)
