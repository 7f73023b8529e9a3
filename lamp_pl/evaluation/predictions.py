"""Predictions in LaMP's own format, gathered from every DDP rank and written once.

The file `{"task": "LaMP_N", "golds": [{"id", "output"}]}` is what the official LaMP evaluation
script reads, so a run's predictions can be scored by it unchanged.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch.distributed as dist

from lamp_pl.cache import write_text_atomic


def gather_predictions(local: list[dict[str, str]]) -> list[dict[str, str]]:
    """Predictions of all ranks, each id once, in first-seen order (rank 0's first).

    Evaluation loaders do not pad shards, but a user-supplied sampler might: dropping repeated
    ids keeps the file valid either way.
    """
    parts = [local]
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        parts = [None] * dist.get_world_size()
        dist.all_gather_object(parts, local)
    seen: dict[str, dict[str, str]] = {}
    for part in parts:
        for record in part or []:
            seen.setdefault(record["id"], record)
    return list(seen.values())


def write_json_atomic(path: str | Path, document: Any) -> Path:
    """Write JSON through a temporary file and rename, so readers never see half a file."""
    return write_text_atomic(path, json.dumps(document, indent=1))


def output_dirs(trainer) -> list[Path]:
    """Where a run's outputs go: its (versioned) log dir and, when evaluating a checkpoint, next
    to that checkpoint. Call on every rank: `trainer.log_dir` is a broadcast under DDP."""
    dirs = [Path(trainer.log_dir or trainer.default_root_dir)]
    ckpt = getattr(trainer, "ckpt_path", None)
    if ckpt and Path(ckpt).is_file() and Path(ckpt).parent not in dirs:
        dirs.append(Path(ckpt).parent)
    return dirs


def write_run_outputs(
    folders: list[Path], task: str, split: str, predictions: list[dict[str, str]], metrics: dict[str, float] | None
) -> list[Path]:
    """Write `predictions_<split>.json` (and `metrics_<split>.json` when scored); return the paths."""
    written = []
    for folder in folders:
        written.append(write_json_atomic(folder / f"predictions_{split}.json", {"task": task, "golds": predictions}))
        if metrics is not None:
            written.append(write_json_atomic(folder / f"metrics_{split}.json", metrics))
    print(f"lamp_pl: wrote {', '.join(str(p) for p in written)}")
    return written
