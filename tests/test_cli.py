"""End to end through the CLI: fit, validate, test and predict on tiny models for every task."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split
from lamp_pl.tasks import get_task, task_names

CONF = Path(__file__).parent / "conf" / "tiny.yaml"
CONFIG_DIR = Path(__file__).parents[1] / "configs"
CONFIGS = sorted(CONFIG_DIR.rglob("*.yaml"))


def tiny_args(tiny_t5: Path, data_root: Path, tmp_path: Path, task: str) -> list[str]:
    return ["--config", str(CONF), "--data.task", task, "--data.data_dir", str(data_root),
            "--data.cache_dir", str(tmp_path / "cache"), "--data.tokenizer", str(tiny_t5),
            "--model.model_name_or_path", str(tiny_t5), "--trainer.default_root_dir", str(tmp_path / "runs")]


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
    main(["fit", *args, "--trainer.fast_dev_run", "true", "--data.retrieval.retriever", "contriever",
          "--data.retrieval.encoder", str(tiny_bert)])
    main(["validate", *args, "--trainer.fast_dev_run", "true", "--data.k", "0"])


def test_zero_shot_test_without_checkpoint(tiny_t5, data_root, tmp_path):
    main(["test", *tiny_args(tiny_t5, data_root, tmp_path, "LaMP_3")])
    assert predictions(tmp_path, "test")["golds"]


@pytest.mark.parametrize("config", CONFIGS, ids=lambda p: str(p.relative_to(p.parents[1])))
def test_every_config_parses(config, capsys):
    """Each config file is valid against the CLI (types, names, links)."""
    args = ["fit", "--config", str(config), "--print_config"]
    if config.parent.name == "trainer" or config.name == "demo_k0.yaml":
        args = ["fit", "--config", str(CONFIG_DIR / "demo.yaml"), "--config", str(config), "--print_config"]
    with pytest.raises(SystemExit) as exit_info:
        main(args)
    assert exit_info.value.code in (0, None)
    printed = yaml.safe_load(capsys.readouterr().out)
    # Linked arguments are set once, in the data section, and derived for the model.
    assert "task" not in printed["model"] and "tokenizer" not in printed["model"]
    assert printed["data"]["task"] and printed["data"]["tokenizer"]
