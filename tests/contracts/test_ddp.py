"""DDP on 2 CPU processes (gloo) gives the single-device answer; resuming gives the uninterrupted one."""

from __future__ import annotations

import json
from pathlib import Path

from helpers import run_cli, tiny_args
from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split


def newest(folder: Path, pattern: str) -> Path:
    found = sorted(folder.rglob(pattern), key=lambda p: p.stat().st_mtime)
    assert found, f"nothing matches {pattern} under {folder}"
    return found[-1]


def test_ddp_two_cpu_processes_match_single_device(tiny_t5, tiny_bert, data_root, tmp_path):
    single = tiny_args(tiny_t5, data_root, tmp_path / "single", "LaMP_2")
    dense = ["--data.retrieval.retriever", "contriever", "--data.retrieval.encoder", str(tiny_bert)]
    main(["fit", *single, *dense])
    checkpoint = newest(tmp_path / "single", "last.ckpt")
    main(["test", *single, *dense, "--ckpt_path", str(checkpoint)])
    reference_metrics = json.loads(newest(tmp_path / "single", "metrics_test.json").read_text())
    reference = json.loads(newest(tmp_path / "single", "predictions_test.json").read_text())

    # A fresh cache, so the 2 ranks build the index themselves (encoding sharded between them).
    ddp = tiny_args(tiny_t5, data_root, tmp_path / "ddp", "LaMP_2")
    ddp_trainer = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    log = run_cli(["test", *ddp, *dense, *ddp_trainer, "--ckpt_path", str(checkpoint)])
    assert "world_size=2" in log or "distributed_backend=gloo" in log
    manifests = list((tmp_path / "ddp" / "cache").rglob("manifest.json"))
    assert len(manifests) == 1, "the index is built once, not once per rank"
    ddp_metrics = json.loads(newest(tmp_path / "ddp", "metrics_test.json").read_text())
    assert ddp_metrics == reference_metrics
    written = json.loads(newest(tmp_path / "ddp", "predictions_test.json").read_text())
    ids = [g["id"] for g in written["golds"]]
    assert sorted(ids) == sorted(q.id for q in load_split(data_root, "LaMP_2", "test"))
    assert len(ids) == len(set(ids)), "each id exactly once"
    assert {g["id"]: g["output"] for g in written["golds"]} == {g["id"]: g["output"] for g in reference["golds"]}

    # Training under DDP runs too (each rank its share of the shuffled batches).
    run_cli(["fit", *ddp, *dense, *ddp_trainer])
    assert newest(tmp_path / "ddp", "last.ckpt")


def test_resume_from_last_checkpoint_matches_uninterrupted(tiny_t5, data_root, tmp_path):
    def run(folder: str, *extra: str) -> list[str]:
        return tiny_args(tiny_t5, data_root, tmp_path / folder, "LaMP_3") + [
            "--trainer.limit_train_batches",
            "3",
            *extra,
        ]

    main(["fit", *run("straight", "--trainer.max_epochs", "2")])
    main(["fit", *run("resumed", "--trainer.max_epochs", "1")])
    main(["fit", *run("resumed", "--trainer.max_epochs", "2"), "--ckpt_path", "last"])
    for folder in ("straight", "resumed"):
        main(["test", *run(folder), "--ckpt_path", str(newest(tmp_path / folder, "last.ckpt"))])
    straight = json.loads(newest(tmp_path / "straight", "metrics_test.json").read_text())
    resumed = json.loads(newest(tmp_path / "resumed", "metrics_test.json").read_text())
    assert resumed == straight
