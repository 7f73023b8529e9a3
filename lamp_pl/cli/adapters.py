"""`lamp-pl fit-task-adapter`, `fit-users` and `test-users`: the per-user LoRA adapter commands.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); each calls its
library function in `lamp_pl.adapters` with the config's data and model sections. The training
and LoRA settings are `--training.x` / `--lora.x` (or the flat `--lr`, `--epochs`, `--r`,
`--dropout` ... these commands always took); their defaults are the adapters' own
(`lamp_pl.lightning.settings.ADAPTER_TRAINING`, `lamp_pl.models.adapters.ADAPTER_LORA`: no LoRA
dropout, unlike `model.peft`).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from lamp_pl.lightning.settings import ADAPTER_TRAINING, TASK_ADAPTER_TRAINING, TrainSettings
from lamp_pl.models.adapters import ADAPTER_LORA, LoraSettings

if TYPE_CHECKING:
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.module import LaMPModel


def fit_users(
    data: LaMPDataModule,
    model: LaMPModel,
    out: Path,
    shard: str = "0/1",
    min_profile: int = 4,
    ckpt_path: Path | None = None,
    split: str | None = None,
    init_adapter: Path | None = None,
    training: TrainSettings = ADAPTER_TRAINING,
    lora: LoraSettings = ADAPTER_LORA,
) -> dict:
    """Train one LoRA adapter per user of a split over the config's frozen base model.

    Prints the summary: users trained / skipped (finished earlier) / too small, bytes per
    adapter, seconds.

    Args:
        data: The config's data section (its task, splits and lengths).
        model: The config's model section: the frozen base the adapters sit on.
        out: Folder of the adapters (one `<user>-<hash>.safetensors` each, plus `adapters.json`).
        shard: "i/n": train only every n-th user starting at i (also split over DDP ranks).
        min_profile: Users with fewer training pairs get no adapter (they use the base model).
        ckpt_path: A Lightning checkpoint of the base model (e.g. the non-personalized fit).
        split: Whose users (default: the data section's `test_split`).
        init_adapter: A task adapter (`lamp-pl fit-task-adapter`) every user's adapter starts
            from, and that users without one use (two-stage PEFT); None = a fresh LoRA
            initialisation.
        training: Passes over each user's pairs, AdamW learning rate, pairs per step; the seed
            seeds each user's batch order (with the user id).
        lora: The adapters' rank, alpha and dropout.
    """
    from lamp_pl.adapters.base import AdapterJob
    from lamp_pl.adapters.fit import fit_users as fit

    job = AdapterJob(data, model, ckpt_path, training, lora)
    return fit(job, out, split=split, shard=shard, min_profile=min_profile, init_adapter=init_adapter)


def fit_task_adapter(
    data: LaMPDataModule,
    model: LaMPModel,
    out: Path,
    training: TrainSettings = TASK_ADAPTER_TRAINING,
    lora: LoraSettings = ADAPTER_LORA,
    ckpt_path: Path | None = None,
    split: str | None = None,
) -> dict:
    """Train the task-level LoRA that two-stage per-user adapters start from.

    Stage one: one LoRA on all users' training questions, saved as ``<out>/task.safetensors``.
    Prints the adapter file, training pairs, final loss and seconds.

    Args:
        data: The config's data section (its task, splits and lengths).
        model: The config's model section: the frozen base the adapter sits on.
        out: Folder of the task adapter (with its `adapters.json`).
        training: Passes over the training pairs, AdamW learning rate, pairs per step; the seed
            seeds the batch order.
        lora: The adapter's rank, alpha and dropout (the user adapters must share rank and alpha).
        ckpt_path: A Lightning checkpoint of the base model.
        split: The questions trained on (default: the data section's `train_split`).
    """
    from lamp_pl.adapters.base import AdapterJob
    from lamp_pl.adapters.two_stage import fit_task_adapter as fit

    return fit(AdapterJob(data, model, ckpt_path, training, lora), out, split)


def test_users(
    data: LaMPDataModule,
    model: LaMPModel,
    user_adapters: Path,
    out: Path | None = None,
    split: str | None = None,
    batch_size: int | None = None,
    ckpt_path: Path | None = None,
) -> dict:
    """Score a split with per-user adapters and write `predictions_<split>.json` / `metrics_<split>.json`.

    Prints the metrics plus `users_with_adapter`, `users_without_adapter` and the written paths.

    Args:
        data: The data section the adapters were trained with (`--data.k 0`: adapters alone,
            without retrieval).
        model: The model section the adapters were trained with (the shared base).
        user_adapters: Folder written by `lamp-pl fit-users`.
        out: Where to write (default: `<user_adapters>/eval`).
        split: Split to score (default: the data section's `test_split`).
        batch_size: Questions per generate call (default: the data section's eval batch size).
        ckpt_path: The base checkpoint (default: the one recorded in the folder's settings).
    """
    from lamp_pl.adapters.evaluate import test_users as score

    return score(data, model, user_adapters, ckpt_path=ckpt_path, out=out, split=split, batch_size=batch_size)


test_users.__test__ = False  # type: ignore[attr-defined]  # keep pytest from collecting it when imported

__all__ = ["fit_task_adapter", "fit_users", "test_users"]
