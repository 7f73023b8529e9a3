"""Shared pieces of the LongLaMP and LaMP-QA tests (import as `from longform_helpers import ...`).

Each test writes its data with `datasets.save_to_disk` in the published schema
(`lamp_pl.demo.longform`); these helpers read such a copy back, save a copy with broken records,
build a tiny T5 on its texts, and set up the BM25 data module and the one-epoch CPU trainer of
an end-to-end run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import datasets
import lightning as L

from lamp_pl.demo.models import build_tiny_t5
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.retrieval import RetrievalConfig

LONGLAMP_METRICS = {"rouge-1", "rouge-2", "rouge-L", "rouge-LSum", "bleu"}
"""LongLaMP's metrics that need no extra data (METEOR needs NLTK's WordNet)."""


def published(root: Path, config: str) -> datasets.DatasetDict:
    """The `DatasetDict` of one config of a local copy (``<root>/<config>``)."""
    return datasets.load_from_disk(str(root / config))


def save_broken(root: Path, config: str, split: str, records: list[dict], dest: Path) -> Path:
    """Save a copy of ``<root>/<config>`` with `split`'s records replaced by `records` to
    ``<dest>/<config>``; returns `dest` (the folder to name as the dataset)."""
    data = published(root, config)
    parts = {name: data[name] for name in data if name != split}
    parts[split] = datasets.Dataset.from_list(records)
    datasets.DatasetDict(parts).save_to_disk(str(dest / config))
    return dest


def tiny_t5_on(texts: list[str], dest: Path) -> Path:
    """A tiny random T5 (and tokenizer) folder whose tokenizer is trained on `texts`."""
    return build_tiny_t5(dest, texts, vocab_size=300)


def bm25_module(hub_copy: Path, tmp_path: Path, task: str, model_dir: Path, **overrides: Any) -> LaMPDataModule:
    """The data module of `task` read from the local copy `hub_copy`: BM25 top-1, 256 input tokens,
    batches of 4, caches in ``tmp_path/cache`` (`overrides` win)."""
    settings: dict[str, Any] = {
        "task": task,
        "source": {"dataset": str(hub_copy)},
        "cache_dir": str(tmp_path / "cache"),
        "tokenizer": str(model_dir),
        "k": 1,
        "retrieval": RetrievalConfig(retriever="bm25"),
        "max_input_length": 256,
        "batch_size": 4,
        **overrides,
    }
    return LaMPDataModule(**settings)


def tiny_trainer(tmp_path: Path, **overrides: Any) -> L.Trainer:
    """A CPU trainer of one epoch of two batches, writing into ``tmp_path/runs``, without a logger."""
    settings: dict[str, Any] = {
        "accelerator": "cpu",
        "max_epochs": 1,
        "limit_train_batches": 2,
        "default_root_dir": str(tmp_path / "runs"),
        "enable_progress_bar": False,
        "enable_model_summary": False,
        "logger": False,
        **overrides,
    }
    return L.Trainer(**settings)
