"""`test_users`: evaluate every question with its own user's adapter (alone or with retrieval).

Questions are grouped by user; for each user the LoRA slot's weights are swapped in place (the
base model is loaded once), or the adapter is disabled for users without one. The prompts are the
data module's own, so `k > 0` gives the RAG + PEFT combination and `k = 0` the adapter alone.
Predictions and metrics are written as `lamp-pl test` writes them, each prediction also naming
its `user` and whether an `adapter` answered it.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

import torch

from lamp_pl.adapters.base import add_lora_slot, build_base, resolve_base, set_lora_state
from lamp_pl.adapters.store import check_adapters, load_adapter, read_settings
from lamp_pl.data.lamp import load_split
from lamp_pl.errors import ConfigError
from lamp_pl.evaluation.predictions import write_run_outputs
from lamp_pl.lightning.checkpoints import check_checkpoint
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.lightning.module import LaMPModel
from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.pipeline.tokenized import collate


def _generate(peft_model, base, rows: list[dict], num_beams: int, max_new_tokens: int) -> list[str]:
    batch = collate(rows, base.tokenizer.pad_token_id)
    with torch.no_grad():
        out = peft_model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
        )
    return [text.strip() for text in base.tokenizer.batch_decode(out, skip_special_tokens=True)]


def test_users(
    data: LaMPDataModule,
    model: LaMPModel,
    user_adapters: str | Path,
    *,
    ckpt_path: str | Path | None = None,
    out: str | Path | None = None,
    split: str | None = None,
    batch_size: int | None = None,
) -> dict:
    """Score a split with per-user adapters (`lamp-pl test-users`, `lamp_pl.cli.adapters.test_users`,
    documents each argument): predictions and metrics written as `lamp-pl test` writes them.

    Returns:
        The metrics plus `users_with_adapter`, `users_without_adapter` and the written paths.
    """
    start = time.perf_counter()
    datamodule = data
    resolve_base(datamodule, model, ckpt_path)
    settings = read_settings(user_adapters)
    check_adapters(user_adapters)  # a damaged adapter is named before the base is loaded
    if ckpt_path is None and settings.get("ckpt") is not None:
        check_checkpoint(settings["ckpt"])
    if settings["task"] != model.hparams["task"]:
        raise ConfigError(
            f"{user_adapters}: adapters are for task {settings['task']!r}, config is {model.hparams['task']!r}"
        )
    base = build_base(model, ckpt_path if ckpt_path is not None else settings["ckpt"])
    peft_model = add_lora_slot(base.model, settings).eval()
    split = split or datamodule.test_split
    datamodule.test_split = split
    datamodule.prepare()
    datamodule.load("test")
    dataset = datamodule.datasets[split]
    users = {q.id: q.user for q in load_split(datamodule.data_dir, datamodule.task, split)}
    by_user: dict[str, list[int]] = {}
    for index, qid in enumerate(dataset.ids):
        by_user.setdefault(users[qid], []).append(index)
    task, hp = datamodule.task, base.hparams
    metric = build_metrics(task.metric_kind, task.labels)
    size = batch_size or datamodule.eval_batch_size
    predictions, had_adapter = [], set()
    fallback = None
    if settings.get("init_adapter"):  # two-stage: users without their own adapter use the task adapter
        from lamp_pl.adapters.two_stage import load_task_adapter

        fallback = load_task_adapter(settings["init_adapter"]["path"], settings)
    for user, indices in sorted(by_user.items()):
        state = load_adapter(user_adapters, user)
        if state is not None:
            had_adapter.add(user)
        weights = state if state is not None else fallback
        if weights is not None:
            set_lora_state(peft_model, weights)
        scope = contextlib.nullcontext() if weights is not None else peft_model.disable_adapter()
        with scope:
            for begin in range(0, len(indices), size):
                rows = [dataset[i] for i in indices[begin : begin + size]]
                outputs = _generate(peft_model, base, rows, hp.num_beams, hp.max_new_tokens)
                scored = [(o, r["target"]) for o, r in zip(outputs, rows) if r["target"] is not None]
                if scored:
                    extra = {"users": [user] * len(scored)} if task.metric_kind == "multilabel" else {}
                    metric.update([o for o, _ in scored], [t for _, t in scored], **extra)
                predictions += [
                    {"id": r["id"], "output": o, "user": user, "adapter": state is not None}
                    for r, o in zip(rows, outputs)
                ]
    metrics = {f"test/{k}": float(v) for k, v in metric.compute().items()} if metric.update_called else None
    folder = Path(out) if out is not None else Path(user_adapters) / "eval"
    written = write_run_outputs([folder], task.name, split, predictions, metrics)
    return {
        **(metrics or {}),
        "users_with_adapter": len(had_adapter),
        "users_without_adapter": len(by_user) - len(had_adapter),
        "questions": len(predictions),
        "files": [str(p) for p in written],
        "seconds": round(time.perf_counter() - start, 2),
    }


test_users.__test__ = False  # type: ignore[attr-defined]  # keep pytest from collecting it when imported
