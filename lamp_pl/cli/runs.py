"""One run folder per experiment, and `--ckpt_path best|last` resolved inside it alone.

An experiment's folder is `runs/<task>/<retriever>[/<run_name>]` (retriever ``none`` when k is 0)
unless the trainer's `default_root_dir` is set. `best` and `last` never look outside that folder,
so testing `LaMP_4/contriever` can not pick up the checkpoint of `LaMP_4/bm25`. Checkpoints are
read with ``weights_only=True``: nothing in a checkpoint is ever unpickled as code.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lamp_pl.errors import LaMPError
from lamp_pl.lightning.checkpoints import load_mapped

RUNS_ROOT = "runs"


class CheckpointResolutionError(LaMPError, FileNotFoundError):
    """`--ckpt_path best|last` has no checkpoint to resolve to in the experiment's folder."""

    def __str__(self) -> str:  # one message, not OSError's (errno, strerror) pair
        return str(self.args[0]) if self.args else ""


def run_folder(
    task_name: str, k: float, retriever: str, run_name: str | None = None, root: str | Path = RUNS_ROOT
) -> Path:
    """The default root dir of an experiment: ``<root>/<task>/<retriever>[/<run_name>]``.

    Args:
        task_name: the task's registry name (already checked to be a plain file name).
        k: profile items per prompt; 0 means no retrieval, whatever the retriever setting says.
        retriever: the configured retriever name.
        run_name: optional name that separates runs of one (task, retriever) pair.
        root: the folder holding every experiment.
    """
    from lamp_pl.tasks import check_plain_name

    parts = [check_plain_name(task_name, "task name"), "none" if k == 0 else check_plain_name(retriever, "retriever")]
    if run_name:
        parts.append(check_plain_name(run_name, "run_name"))
    return Path(root, *parts)


def default_run_folder(data: Any, run_name: str | None = None, root: str | Path = RUNS_ROOT) -> Path:
    """`run_folder` of a parsed `data` config section (a namespace or a dict: task name or spec
    path, k, retrieval.retriever)."""
    from lamp_pl.tasks import get_task

    def field(section: Any, name: str, default: Any) -> Any:
        value = section.get(name, default) if hasattr(section, "get") else getattr(section, name, default)
        return default if value is None else value

    retriever = field(field(data, "retrieval", {}), "retriever", "contriever")
    return run_folder(get_task(field(data, "task", "LaMP_2")).name, field(data, "k", 1), retriever, run_name, root)


def newest_last_checkpoint(folder: str | Path) -> Path:
    """The most recently written ``last*.ckpt`` under `folder` (any version subfolder)."""
    candidates = sorted(Path(folder).rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime_ns)
    if not candidates:
        raise CheckpointResolutionError(
            f"{folder}: no last.ckpt in this experiment's folder yet: run fit for it first, or pass a checkpoint path"
        )
    return candidates[-1]


def recorded_best(checkpoint: str | Path) -> Path:
    """The best checkpoint that `checkpoint`'s ModelCheckpoint state records (read with weights_only).

    Raises:
        CheckpointResolutionError: no best path is recorded, or the recorded file is gone (there
            is deliberately no fallback to `last`: that would evaluate another model than asked).
    """
    state = load_mapped(checkpoint)  # the callbacks' states only: the tensors stay on disk
    # The callback that monitors a metric; `LastCheckpoint`s (no monitor) record last.ckpt.
    recorded = [
        s.get("best_model_path")
        for name, s in state.get("callbacks", {}).items()
        if name.startswith("ModelCheckpoint") and s.get("monitor") and s.get("best_model_path")
    ]
    if not recorded:
        raise CheckpointResolutionError(
            f"--ckpt_path best: {checkpoint} records no best checkpoint (no monitored "
            "metric was logged); use --ckpt_path last or a path"
        )
    best = Path(recorded[0])
    if not best.is_file():
        raise CheckpointResolutionError(
            f"--ckpt_path best: {checkpoint} records {best} as best, but that file is "
            "missing; use --ckpt_path last or a path"
        )
    return best


def resolve_checkpoint(which: str, folder: str | Path) -> Path:
    """`best` or `last` of the experiment whose run folder is `folder`."""
    if which not in ("best", "last"):
        raise ValueError(f"resolve_checkpoint: expected 'best' or 'last', got {which!r}")
    last = newest_last_checkpoint(folder)
    return last if which == "last" else recorded_best(last)


__all__ = [
    "RUNS_ROOT",
    "CheckpointResolutionError",
    "default_run_folder",
    "newest_last_checkpoint",
    "recorded_best",
    "resolve_checkpoint",
    "run_folder",
]
