"""Which data files each stage needs, checked before anything is encoded, indexed or cached.

A stage that trains or scores (`fit`, `validate`, `test`) needs the questions *and* the outputs
of its splits; `predict` needs the questions only. A missing piece is reported as one
`MissingDataError` that names the file and the stage, instead of a `KeyError: 'train'` or a
`KeyError: 'labels'` from deep inside a dependency later on.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

from lamp_pl.data.lamp import SPLITS, read_golds, split_files, task_folder
from lamp_pl.errors import MissingDataError
from lamp_pl.tasks import Task, get_task

SCORED_STAGES = ("fit", "validate", "test")
"""Stages whose splits need gold outputs (training targets or metrics)."""


def check_splits_present(data_dir: str | Path, task: str | Task, stage_splits: Mapping[str, Sequence[str]]) -> None:
    """Raise unless every split each stage needs has its files, and its outputs file is valid.

    Args:
        data_dir: the data folder (``<root>/<task>/...`` or the task folder itself).
        task: the task (name, spec path or `Task`).
        stage_splits: stage name (``fit``, ``validate``, ``test``, ``predict``) -> its splits.

    Raises:
        MissingDataError: naming the missing file (or folder) and the stage that needs it.
        LaMPDataError: a malformed outputs file (file, record, field), or two candidate files
            (``.json`` and ``.jsonl``) for one split.
    """
    task = get_task(task)
    folder = task_folder(data_dir, task)
    wanted = dict.fromkeys([*SPLITS, *(split for splits in stage_splits.values() for split in splits)])
    if not any(_questions(data_dir, task, split) for split in wanted):
        names = [f"{split}_questions.json" for split in wanted]
        raise MissingDataError(
            f"{folder}: no {task.name} split files at all (no {', '.join(names[:-1])} or "
            f"{names[-1]}, directly or in <split>/ subfolders); needed by "
            f"{', '.join(stage_splits)}"
        )
    checked: set[Path] = set()
    for stage, splits in stage_splits.items():
        for split in splits:
            found = _questions(data_dir, task, split)
            if found is None:
                raise MissingDataError(
                    f"{folder}/{split}_questions.json: missing; {task.name} {stage} needs the "
                    f"{split!r} split (also looked in {folder}/{split}/)"
                )
            questions, outputs = found
            if stage in SCORED_STAGES and outputs is None:
                raise MissingDataError(
                    f"{questions.with_name(f'{split}_outputs.json')}: missing; {task.name} "
                    f"{stage} needs the gold outputs of the {split!r} split "
                    f"({'training targets' if stage == 'fit' else 'to score it'})"
                )
            if outputs is not None and outputs not in checked:
                read_golds(outputs, task)  # the outputs too, before anything is encoded
                checked.add(outputs)


def _questions(data_dir: str | Path, task: Task, split: str) -> tuple[Path, Path | None] | None:
    try:
        return split_files(data_dir, task, split)
    except FileNotFoundError:
        return None


def stage_splits(data, stage: str | None = None) -> dict[str, list[str]]:
    """The splits a stage of a data pipeline (`lamp_pl.pipeline.data.LaMPData`) needs.

    Args:
        data: The pipeline (its task, data folder and split names are read).
        stage: The stage (``fit``, ``validate``, ``test``, ``predict``) a trainer runs; None
            (`lamp-pl index`): ``fit`` when the training split has questions, else ``predict``
            (a folder of questions to predict only).
    """
    if stage is None:
        stage = "fit" if _questions(data.data_dir, data.task, data.train_split) else "predict"
    return {stage: data.splits_for(stage)}


__all__ = ["SCORED_STAGES", "check_splits_present", "stage_splits"]
