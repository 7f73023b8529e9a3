"""`LaMPData`: the data pipeline of a config's `data:` section, in plain Python (no Lightning).

It parses and validates a LaMP task, builds the retrieval caches (encoding, per-user indexes,
each split's ranking), builds and tokenizes the prompts, and makes the loaders. Every cache is
built once by `prepare` (or `build`, DDP-aware) and only read by `load`. Rank, world size and
stage are arguments, never read from a trainer: `lamp_pl.lightning.datamodule.LaMPDataModule` is the
Lightning shell that passes its trainer's. Building one is cheap (it runs on every DDP rank):
nothing is read until a method is called.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import lamp_pl
from lamp_pl.cache import HASH_STORE, file_sha256_by_state, folder_is_valid, stable_hash, tokenizer_fingerprint
from lamp_pl.data.hub import DatasetSource, materialize
from lamp_pl.data.lamp import split_files
from lamp_pl.data.stages import check_splits_present, stage_splits
from lamp_pl.data.stream import load_questions
from lamp_pl.data.synthetic import SyntheticSpec, write_synthetic_once
from lamp_pl.errors import ConfigError
from lamp_pl.models.tokenizer import load_tokenizer
from lamp_pl.pipeline.collective import Collective, agree_on_failure
from lamp_pl.pipeline.tokenized import TokenizedSplit
from lamp_pl.prompts import PromptOptions, build_prompt
from lamp_pl.retrieval.config import RetrievalConfig
from lamp_pl.retrieval.view import RetrievalView, prepare_views
from lamp_pl.studies import check_study_options
from lamp_pl.tasks import Task, get_task
from lamp_pl.tasks.longform import source_of

EVAL_ORDERS = ("length", "file")
"""How evaluation batches are formed (see `lamp_pl.pipeline.batching`)."""
STAGE_SPLITS = {
    "fit": ("train_split", "val_split"),
    "validate": ("val_split",),
    "test": ("test_split",),
    "predict": ("predict_split",),
}
PROMPT_CACHE_FORMAT = 2
"""Version of the tokenized-prompt cache; bump it whenever prompts.py or tokenized.py changes
what they write, so no cache of the old code is read by the new."""


class LaMPData:
    """Reads a LaMP task, retrieves each question's profile items and emits prompt batches."""

    def __init__(
        self,
        task: str = "LaMP_2",
        data_dir: str = "data/lamp",
        cache_dir: str = "indexes",
        tokenizer: str = "google/flan-t5-base",
        k: float = 1,
        offset: int = 0,
        retrieval: RetrievalConfig = RetrievalConfig(),
        prompt: PromptOptions = PromptOptions(),
        max_input_length: int = 512,
        max_target_length: int | None = None,
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
        source: DatasetSource | None = None,
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
            max_target_length: Longest tokenized gold output in training (default: the task's
                preset for long targets, else 512: the official code truncates targets at its max_length).
            batch_size: Training batch size per device.
            eval_batch_size: Evaluation batch size per device (default: `batch_size`).
            eval_order: `length` (default): validation, test and predict batches of prompts
                sorted by length, longest first (`lamp_pl.pipeline.batching`: less padding, rows that
                finish together; under DDP every rank the same number of batches of its own
                rows); the predictions file keeps file order and holds the predictions of
                file-order batches. `file`: batches in file order.
            eval_max_tokens: Most padded prompt tokens per evaluation batch with
                `eval_order: length` (None: `eval_batch_size` rows only).
            num_workers: DataLoader worker processes.
            train_split: Split used for training.
            val_split: Split used for validation.
            test_split: Split used by `test` (LaMP hides test golds, so `dev` by default).
            predict_split: Split used by `predict`.
            seed: Seed of training-batch shuffling (see `training_sampler`).
            synthetic: Write synthetic LaMP data into `data_dir` first (offline demo, tests).
            source: Read the data with `datasets` (a hub name + config, or a local copy) instead of
                LaMP files; the LongLaMP and LaMP-QA tasks default to their published dataset.
        """
        settings = {name: value for name, value in locals().items() if name not in ("self", "__class__")}
        super().__init__()  # the Lightning shell's LightningDataModule, when there is one
        # Dataclass sections may come back as dicts (from a checkpoint's hyper-parameters).
        retrieval = RetrievalConfig(**retrieval) if isinstance(retrieval, dict) else retrieval
        prompt = PromptOptions(**prompt) if isinstance(prompt, dict) else prompt
        synthetic = SyntheticSpec(**synthetic) if isinstance(synthetic, dict) else synthetic
        source = DatasetSource(**source) if isinstance(source, dict) else source
        # Plain values only, so a checkpoint holding them loads with torch.load(weights_only=True).
        self.settings: dict[str, Any] = {
            **settings,
            "retrieval": dataclasses.asdict(retrieval),
            "prompt": dataclasses.asdict(prompt),
            "synthetic": dataclasses.asdict(synthetic) if synthetic is not None else None,
            "source": dataclasses.asdict(source) if source is not None else None,
        }
        self._keep_settings(self.settings)
        self.task_name, self._data_dir, self.cache_dir = task, data_dir, Path(cache_dir)
        self._task = get_task(task)  # resolved once: everything below takes the `Task`
        if source is None and source_of(self.task.name) is not None:
            source = DatasetSource()  # the task's published dataset
        self.source: DatasetSource | None = source
        self._materialized: str | None = None
        self.tokenizer_name, self.k, self.offset = tokenizer, k, offset
        self.retrieval = retrieval
        self.prompt = prompt
        check_study_options(self.task, k, offset, self.retrieval, prompt)  # no silent no-op options
        self.max_input_length = max_input_length
        self.max_target_length = max_target_length or self.task.max_target_length or 512
        self.batch_size, self.eval_batch_size = batch_size, eval_batch_size or batch_size
        if eval_order not in EVAL_ORDERS:
            raise ConfigError(f"data.eval_order: {eval_order!r} is not one of {', '.join(EVAL_ORDERS)}")
        self.eval_order, self.eval_max_tokens = eval_order, eval_max_tokens
        self.num_workers, self.seed, self.synthetic = num_workers, seed, synthetic
        self.train_split, self.val_split = train_split, val_split
        self.test_split, self.predict_split = test_split, predict_split
        self.datasets: dict[str, TokenizedSplit] = {}
        self._tokenizer = None

    def _keep_settings(self, settings: dict[str, Any]) -> None:
        """Where a subclass records the constructor's arguments (the Lightning shell: hparams)."""

    @property
    def task(self) -> Task:
        """The task (registry entry or custom spec)."""
        return self._task

    @property
    def data_dir(self) -> str:
        """The LaMP data folder: `data_dir`, or the folder a dataset `source` is written to (once
        per dataset fingerprint, under the cache dir)."""
        if self.source is None:
            return self._data_dir
        if self._materialized is None:
            self._materialized = str(materialize(self.source, self.task, self.cache_dir))
        return self._materialized

    @property
    def tokenizer(self) -> Any:
        """The generator's tokenizer, loaded on first use."""
        if self._tokenizer is None:
            self._tokenizer = load_tokenizer(self.tokenizer_name)
        return self._tokenizer

    @property
    def uses_retrieval(self) -> bool:
        """Whether prompts hold profile items (k != 0 and a retriever)."""
        return self.k != 0 and self.retrieval.retriever != "none"

    def splits_for(self, stage: str | None) -> list[str]:
        """The split names a stage reads (every configured split for None)."""
        names = STAGE_SPLITS.get(stage or "", tuple(a for attrs in STAGE_SPLITS.values() for a in attrs))
        return list(dict.fromkeys(getattr(self, name) for name in names))

    def view(self, split: str) -> RetrievalView:
        """The retrieval view of `split`: this config's ranking, cut at its k and offset."""
        return RetrievalView(self.task, Path(self.data_dir), split, self.retrieval, self.cache_dir, self.k, self.offset)

    def prepare_view(
        self,
        split: str,
        *,
        rank: int = 0,
        world_size: int = 1,
        barrier: Any = None,
        progress: bool = True,
    ) -> RetrievalView:
        """Write the synthetic data (rank 0), build or validate `split`'s retrieval caches (every
        rank calls it), and return the split's view."""
        if rank == 0:
            self.write_synthetic_data()
        view = self.view(split)
        view.prepare(rank=rank, world_size=world_size, barrier=barrier, progress=progress)
        return view

    def prompt_for(self, question: Any, items: list[dict]) -> str:
        """The prompt of `question` with `items`, under this config's options and token budget."""
        return build_prompt(
            self.task,
            question.input,
            items,
            self.tokenizer,
            self.max_input_length,
            self.prompt,
            question_id=question.id,
            user_id=question.user,
        )

    def write_synthetic_data(self) -> None:
        """Write the configured synthetic data into `data_dir` (unchanged files are left alone; a
        stamp in the cache folder spares generating it again while they stay unchanged)."""
        if self.synthetic is not None:
            spec = dataclasses.replace(self.synthetic, task=self.task.name)
            write_synthetic_once(self.data_dir, spec, self.cache_dir / ".synthetic")

    def check(self, stage: str | None = None, read: bool = False) -> None:
        """Write the synthetic data and check that `stage`'s files are there (None: `fit` when the
        training split has questions, else `predict`), before anything is cached.

        Args:
            stage: The stage whose splits must be present.
            read: Also parse every configured split's questions (fail fast on bad data).
        """
        self.write_synthetic_data()
        needs = stage_splits(self, stage)
        # `test` on a split without golds writes predictions only (LaMP hides its test golds), so
        # its outputs are checked when present, required only to train or validate.
        needs = {("predict" if name == "test" else name): splits for name, splits in needs.items()}
        check_splits_present(self.data_dir, self.task, needs)
        if read:
            for split in self.splits_for(None):
                load_questions(self.data_dir, self.task, split)

    def prepare(self, stage: str | None = None) -> dict:
        """Check the data, then build every cache the configured splits need, in this process.

        Returns:
            The retrieval summary (empty without retrieval).
        """
        self.check(stage)
        return self.build(self.splits_for(None)) or {}

    def build(
        self,
        splits: list[str],
        rank: int = 0,
        world_size: int = 1,
        strategy: Collective | None = None,
        prompts: bool = True,
    ) -> dict | None:
        """Encode, index, rank and tokenize `splits` (a no-op for what is cached already).

        With a `strategy` (DDP), every rank must call it; rank 0 tokenizes, and an error on any
        rank ends the call with an error on every rank (`agree_on_failure`). With `prompts` False
        the prompts are left for the first `fit` / `test` to tokenize (and the tokenizer unloaded).
        """
        splits = [s for s in splits if self._has_split(s)]
        summary, error = None, None
        try:
            if self.uses_retrieval and splits:
                barrier = strategy.barrier if strategy is not None else None
                views = [self.view(split) for split in splits]
                summary = prepare_views(views, rank=rank, world_size=world_size, barrier=barrier)
            if rank == 0 and prompts:
                for split in splits:
                    if not folder_is_valid(self._prompt_folder(split)):
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

    def load(self, stage: str | None = None) -> None:
        """Load the tokenized splits of `stage` (all for None) from their caches into `datasets`."""
        for split in self.splits_for(stage):
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
            "results": self.view(split).fingerprint() if self.uses_retrieval else None,
            "prompt": dataclasses.asdict(self.prompt),
            "max_input_length": self.max_input_length,
            "max_target_length": self.max_target_length,
            # A dataset source's folder is named after its fingerprints: that name is its identity.
            "data": (
                Path(self.data_dir).name
                if self.source is not None
                else [file_sha256_by_state(path, self.cache_dir / HASH_STORE) for path in files]
            ),
        }
        return stable_hash(settings)

    def _prompt_folder(self, split: str) -> Path:
        return self.cache_dir / self.task.cache_name / "prompts" / f"{split}-{self._cache_key(split)}"

    def _tokenized(self, split: str, build: bool) -> TokenizedSplit:
        folder = self._prompt_folder(split)
        if TokenizedSplit.exists(folder):
            return TokenizedSplit.load(folder)
        if not build:
            raise RuntimeError(
                f"no tokenized cache for split {split!r} at {folder}: the caches are not built "
                "(call prepare() on the data, or prepare_data() on the data module, or use the Trainer)"
            )
        questions = load_questions(self.data_dir, self.task, split)  # streamed; prompts need no profiles
        retrieved = self.view(split).retrieved() if self.uses_retrieval else None
        prompts = [self.prompt_for(q, retrieved[i].items if retrieved else []) for i, q in enumerate(questions)]
        item_ids = [retrieved[i].item_ids if retrieved else [] for i in range(len(questions))]
        return TokenizedSplit.build(
            folder, self.tokenizer, questions, prompts, item_ids, self.max_input_length, self.max_target_length
        )

    def prompts(self, split: str) -> list[str]:
        """The prompts of a split, as the model reads them (for inspection)."""
        return self._tokenized(split, build=True).prompts

    def loader(self, split: str, train: bool = False, rank: int = 0, world_size: int = 1) -> Iterable[dict]:
        """A loader of a loaded split: shuffled by `training_sampler` for training, else in
        length-sorted batches (`eval_order: length`, laid out for `world_size` ranks) or in file
        order, each rank its `UnpaddedShards` under DDP: a torch `DataLoader`."""
        from torch.utils.data import DataLoader  # torch loads here, not for a cached index

        from lamp_pl.pipeline.sharding import eval_sampler, training_sampler
        from lamp_pl.pipeline.tokenized import collate

        if split not in self.datasets:
            self.load(None)
        dataset: Any = self.datasets[split]  # map-style: DataLoader and the samplers take it as is
        collate_fn = functools.partial(collate, pad_token_id=self.tokenizer.pad_token_id)
        batch_size: int | None = self.batch_size if train else self.eval_batch_size
        if not train and self.eval_order == "length":  # whole batches, laid out per rank, are what the sampler deals
            from lamp_pl.pipeline.batching import sorted_eval_dataset

            dataset = sorted_eval_dataset(dataset, self.eval_batch_size, self.eval_max_tokens, world_size)
            batch_size = None
        if train:
            sampler: Any = training_sampler(dataset, self.seed, rank, world_size)
        else:
            sampler = eval_sampler(dataset, rank, world_size)
        return DataLoader(
            dataset,
            batch_size=batch_size,
            sampler=sampler,
            num_workers=self.num_workers,
            collate_fn=collate_fn,
            persistent_workers=self.num_workers > 0,
        )


__all__ = ["PROMPT_CACHE_FORMAT", "STAGE_SPLITS", "LaMPData"]
