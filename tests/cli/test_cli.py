"""End to end through the CLI: fit, validate, test and predict on tiny models for every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import tiny_args
from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split
from lamp_pl.tasks import get_task, task_names


def predictions(tmp_path: Path, split: str) -> dict:
    files = sorted((tmp_path / "runs").rglob(f"predictions_{split}.json"), key=lambda p: p.stat().st_mtime)
    assert files, f"no predictions_{split}.json written"
    return json.loads(files[-1].read_text())


@pytest.mark.parametrize("task", task_names())
def test_fit_test_predict_every_task(task, tiny_t5, data_root, tmp_path):
    args = tiny_args(tiny_t5, data_root, tmp_path, task)
    main(["fit", *args])
    checkpoints = sorted((tmp_path / "runs").rglob("*.ckpt"))
    assert checkpoints, "fit saved no checkpoint"
    main(["test", *args, "--ckpt_path", "best"])
    ids = [q.id for q in load_split(data_root, task, "test")]
    written = predictions(tmp_path, "test")
    assert written["task"] == get_task(task).name
    assert sorted(g["id"] for g in written["golds"]) == sorted(ids)  # every id exactly once
    metrics = json.loads(sorted((tmp_path / "runs").rglob("metrics_test.json"))[-1].read_text())
    assert f"test/{get_task(task).monitor}" in metrics
    main(["predict", *args, "--ckpt_path", str(checkpoints[-1])])
    assert sorted(g["id"] for g in predictions(tmp_path, "test")["golds"]) == sorted(ids)


def test_fast_dev_run_with_dense_retrieval(tiny_t5, tiny_bert, data_root, tmp_path):
    args = tiny_args(tiny_t5, data_root, tmp_path, "LaMP_2")
    main(
        [
            "fit",
            *args,
            "--trainer.fast_dev_run",
            "true",
            "--data.retrieval.retriever",
            "contriever",
            "--data.retrieval.encoder",
            str(tiny_bert),
        ]
    )
    main(["validate", *args, "--trainer.fast_dev_run", "true", "--data.k", "0"])


def test_zero_shot_test_without_checkpoint(tiny_t5, data_root, tmp_path):
    main(["test", *tiny_args(tiny_t5, data_root, tmp_path, "LaMP_3")])
    assert predictions(tmp_path, "test")["golds"]
