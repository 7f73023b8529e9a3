"""`lamp-pl check-data`: validate a LaMP data folder and summarise it as JSON."""

from __future__ import annotations

import statistics
from pathlib import Path

from lamp_pl.data.lamp import LaMPQuestion, available_splits, load_split, split_files
from lamp_pl.data.stages import check_splits_present
from lamp_pl.tasks import get_task


def summarize_split(questions: list[LaMPQuestion]) -> dict:
    """Counts and profile-size statistics of one loaded split."""
    sizes = [len(q.profile) for q in questions]
    return {
        "questions": len(questions),
        "users": len({q.user for q in questions}),
        "profile_items": sum(sizes),
        "distinct_profile_items": len({item["id"] for q in questions for item in q.profile}),
        "profile_size": {
            "min": min(sizes, default=0),
            "median": statistics.median(sizes) if sizes else 0,
            "max": max(sizes, default=0),
        },
        "empty_profiles": sum(1 for s in sizes if s == 0),
        "has_outputs": all(q.output is not None for q in questions) if questions else False,
    }


DEFAULT_STAGES = {"fit": ["train", "dev"], "validate": ["dev"], "test": ["dev"], "predict": ["test"]}
"""The splits each stage reads with the datamodule's default split names."""


def check_data(
    task: str, data_dir: str | Path, splits: list[str] | None = None, stages: dict[str, list[str]] | None = None
) -> dict:
    """Load and validate the splits (all present ones by default); raise on the first problem.

    Args:
        stages: stage -> splits that must be present (with outputs where the stage scores); by
            default only some split must exist, and the summary's ``ready_for`` tells, per stage
            with the default split names, whether its files are there (or what is missing).
    """
    task_entry = get_task(task)
    check_splits_present(data_dir, task_entry, stages or {"check-data": splits or []})
    splits = splits or available_splits(data_dir, task_entry)
    summary = {"task": task_entry.name, "data_dir": str(data_dir), "splits": {}}
    for split in splits:
        questions_path, outputs_path = split_files(data_dir, task_entry, split)
        entry = summarize_split(load_split(data_dir, task_entry, split))
        entry["files"] = [str(questions_path)] + ([str(outputs_path)] if outputs_path else [])
        summary["splits"][split] = entry
    summary["ready_for"] = {
        stage: _ready(data_dir, task_entry, stage, names) for stage, names in DEFAULT_STAGES.items()
    }
    return summary


def _ready(data_dir: str | Path, task, stage: str, splits: list[str]) -> bool | str:
    try:
        check_splits_present(data_dir, task, {stage: splits})
        return True
    except FileNotFoundError as missing:
        return str(missing)
