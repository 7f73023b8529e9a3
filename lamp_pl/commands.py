"""The commands of `lamp-pl` that do not train: data preparation and inspection.

Each is a typed function whose docstring is its `--help` (see `lamp_pl.cli`, which registers and
parses them). Heavy modules are imported inside the functions, so a command pays only for what it
uses. Functions taking `data` receive the `LaMPDataModule` of the config's data section; no model
weights are loaded.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Literal

if TYPE_CHECKING:
    from lamp_pl.datamodule import LaMPDataModule

Split = Literal["train", "dev", "test"]


def check_data(task: str, data_dir: Path, split: list[Split] | None = None) -> dict:
    """Validate a LaMP data folder and print a JSON summary.

    Args:
        task: LaMP task name (`LaMP_1` .. `LaMP_7`, `LaMP_2N`) or a custom task's .json spec.
        data_dir: Folder with `<task>/<split>_questions.json` (or `<task>/<split>/...`).
        split: Check only these splits (default: every split present).
    """
    from lamp_pl.data.check import check_data as check

    return check(task, data_dir, list(split) if split else None)


def download(task: str, dest: Path, split: list[Split] | None = None, time_based: bool = False,
             base_url: str | None = None, force: bool = False, retries: int = 3, timeout: float = 60.0,
             progress: bool = True) -> list[Path]:
    """Download the official files of one LaMP task.

    Resumable and atomic: a file appears under its final name only when complete and valid JSON.

    Args:
        task: One of LaMP_1, LaMP_2, LaMP_2N, LaMP_3, LaMP_4, LaMP_5, LaMP_7 (LaMP_6 explains how to build it).
        dest: Root data directory; files go to `<dest>/<task>/<split>/`.
        split: Splits to fetch (default: all).
        time_based: Fetch the time-based instead of the user-based split.
        base_url: Server root (default: the official one); for mirrors and tests.
        force: Re-download files that already exist.
        retries: Extra attempts per file after a dropped connection.
        timeout: Socket timeout in seconds.
        progress: Show per-file progress bars.
    """
    from lamp_pl.data import download as dl

    return dl.download_lamp(task, dest, split or dl.SPLITS, time_based, base_url or dl.DEFAULT_BASE_URL,
                            progress, retries, timeout, force)


def synthetic(dest: Path, task: str = "LaMP_2", users: int = 60, profile_size: tuple[int, int] = (8, 24),
              questions_per_user: int = 1, time_based: bool = False, seed: int = 0) -> Path:
    """Write a synthetic LaMP task folder (offline demo and tests).

    Args:
        dest: Root data directory; the task folder is `<dest>/<task>`.
        task: Which LaMP task's shape to imitate.
        users: Number of users.
        profile_size: Smallest and largest profile size.
        questions_per_user: Questions per user.
        time_based: Time-based split (each user's questions in every split).
        seed: Random seed; equal arguments give byte-identical files.
    """
    from lamp_pl.data.synthetic import write_synthetic

    return write_synthetic(dest, task=task, users=users, profile_size=tuple(profile_size),
                           questions_per_user=questions_per_user, time_based=time_based, seed=seed)


def index(data: LaMPDataModule) -> dict:
    """Build (or verify) every data cache of a config; print a JSON summary.

    Encodes profiles, builds the per-user indexes, ranks every split's items and tokenizes the
    prompts, once; a second run only verifies the caches.

    Args:
        data: The config's data section.
    """
    start = time.perf_counter()
    data.write_synthetic_data()
    summary = data.build(data.splits_for(None)) or {}
    summary.setdefault("seconds", round(time.perf_counter() - start, 3))
    summary.update(task=data.task.name, retriever=data.retrieval.retriever, cache_dir=str(data.cache_dir))
    return summary


def inspect(data: LaMPDataModule, id: str, split: str = "dev") -> dict | int:
    """Print what the model reads for one question: query, items, prompt.

    Args:
        data: The config's data section.
        id: Question id.
        split: Split holding the question.
    """
    from lamp_pl.data.lamp import load_split
    from lamp_pl.retrieval import load_retrieved

    data.write_synthetic_data()
    data.build([split])
    questions = load_split(data.data_dir, data.task, split)
    index = next((i for i, q in enumerate(questions) if q.id == id), None)
    if index is None:
        print(f"lamp-pl inspect: error: no question {id!r} in split {split!r}", file=sys.stderr)
        return 1
    question = questions[index]
    retrieved = load_retrieved(data.task, data.data_dir, split, data.retrieval, data.cache_dir, data.k,
                               data.offset)[index] if data.uses_retrieval else None
    prompt = data.prompts(split)[index]
    return {
        "id": question.id, "user": question.user, "retriever": data.retrieval.retriever, "k": data.k,
        "query": data.task.query(question.input),
        "retrieved": [{"id": item["id"], "score": score, "text": data.task.item_text(item)}
                      for item, score in zip(retrieved.items, retrieved.scores)] if retrieved else [],
        "prompt": prompt, "prompt_tokens": len(data.tokenizer(prompt, truncation=True,
                                                             max_length=data.max_input_length)["input_ids"]),
        "gold": question.output,
    }


def _data_section(data: LaMPDataModule) -> LaMPDataModule:
    """The config's data section (used by `datamodule_from_config`)."""
    return data


def datamodule_from_config(configs: list[str], overrides: list[str] | None = None) -> LaMPDataModule:
    """The `LaMPDataModule` of one or more config files (later files win) with `--data.x value`
    overrides, parsed as `lamp-pl index` parses them (for notebooks and scripts)."""
    from lamp_pl.cli import build_parser

    parser = build_parser("data", _data_section)
    args = [arg for path in configs for arg in ("--config", str(path))] + list(overrides or [])
    return parser.instantiate_classes(parser.parse_args(args)).data
