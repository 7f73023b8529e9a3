"""Two-stage per-user PEFT ("One PEFT Per User"): a task-level LoRA first, then one per user.

Stage one, `fit_task_adapter`, trains a single LoRA over the frozen base on every training
question of every user (the question's input and gold output) and saves it as
``<out>/task.safetensors`` with the folder's `adapters.json`. Stage two is
``fit_users(..., init_adapter=<out>/task.safetensors)`` (``lamp-pl fit-users --init_adapter``):
each user's LoRA starts from the task adapter's weights instead of a fresh initialisation and is
trained on the user's own profile items; `test_users` gives users without an adapter of their
own the task adapter. The per-user adapters' folder records the task adapter's path and sha256
(so a changed task adapter is never mixed with adapters trained from the old one), and
``user_data.json`` there holds each user's number of training pairs, the x-axis of the
cold-start reading (less user data, less PEFT gain).
"""

from __future__ import annotations

import time
from pathlib import Path

import torch

from lamp_pl.adapters.base import AdapterJob, lora_state
from lamp_pl.adapters.store import read_lora, read_settings, write_settings
from lamp_pl.cache import file_sha256
from lamp_pl.errors import LaMPError

TASK_ADAPTER = "task.safetensors"
SHARED = ("r", "alpha", "task", "base", "random_init", "ckpt")
"""Settings a task adapter and the user adapters started from it must share."""


class TaskAdapterError(LaMPError, ValueError):
    """A task adapter is missing or was trained with other LoRA settings than the users'."""


def init_settings(settings: dict, init_adapter: str | Path) -> dict:
    """The user adapters' settings with the task adapter they start from (path and sha256).

    Raises:
        TaskAdapterError: the file is missing.
    """
    path = Path(init_adapter)
    if not path.is_file():
        raise TaskAdapterError(f"{path}: no task adapter (train one with fit_task_adapter)")
    return {**settings, "init_adapter": {"path": str(path.resolve()), "sha256": file_sha256(path)}}


def load_task_adapter(init_adapter: str | Path, settings: dict) -> dict[str, torch.Tensor]:
    """The task adapter's LoRA state, checked against the user adapters' `settings`.

    Raises:
        TaskAdapterError: missing, changed since `settings` recorded it, or trained with other
            r / alpha / task / base / checkpoint.
    """
    path = Path(init_adapter)
    if not path.is_file():
        raise TaskAdapterError(f"{path}: no task adapter (train one with fit_task_adapter)")
    recorded = settings.get("init_adapter")
    if recorded and recorded.get("sha256") != file_sha256(path):
        raise TaskAdapterError(f"{path}: the task adapter changed since these user adapters were trained from it")
    theirs = read_settings(path.parent)
    different = [k for k in SHARED if theirs.get(k) != settings.get(k)]
    if different:
        raise TaskAdapterError(
            f"{path}: the task adapter was trained with other settings ({', '.join(different)}) than these user adapters"
        )
    return read_lora(path, "task adapter")


def fit_task_adapter(job: AdapterJob, out: str | Path, split: str | None = None) -> dict:
    """Train the task-level LoRA that two-stage per-user adapters start from (`lamp-pl
    fit-task-adapter`, `lamp_pl.cli.adapters.fit_task_adapter`, documents each argument).

    Stage one: one LoRA on all users' training questions (`split`, default the data section's
    `train_split`), saved as ``<out>/task.safetensors``; `job.training.seed` seeds it.

    Returns:
        Summary: the adapter file, training pairs, final loss, seconds.
    """
    from lamp_pl.adapters.store import adapter_path, save_adapter

    start = time.perf_counter()
    split = split or job.data.train_split
    pairs = [(q.input, str(q.output)) for q in job.questions(split) if q.output is not None]
    if not pairs:
        raise TaskAdapterError(f"split {split!r} has no gold outputs to train a task adapter on")
    settings = job.settings()
    write_settings(out, settings)
    base, peft_model = job.slot(settings)
    loss = job.train(peft_model, base.tokenizer, pairs, job.training.seed)
    path = Path(out) / TASK_ADAPTER
    save_adapter(out, "task", lora_state(peft_model))  # atomic, under the per-user name ...
    adapter_path(out, "task").replace(path)  # ... then renamed (atomic too) to the task adapter's
    return {"adapter": str(path), "pairs": len(pairs), "loss": loss, "seconds": round(time.perf_counter() - start, 2)}


__all__ = [
    "TASK_ADAPTER",
    "TaskAdapterError",
    "fit_task_adapter",
    "init_settings",
    "load_task_adapter",
]
