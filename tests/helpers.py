"""Helpers shared by test files (import as `from helpers import ...`; tests/ is on sys.path)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parents[1]
CONF = Path(__file__).parent / "conf" / "tiny.yaml"


def cli_environment(**extra: str) -> dict[str, str]:
    """The environment of a `python cli.py` child: offline, this checkout and tests/ importable."""
    path = os.pathsep.join([str(ROOT), str(ROOT / "tests"), os.environ.get("PYTHONPATH", "")])
    return {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONPATH": path, **extra}


def run_cli(args: list[str], timeout: int = 300, **env: str) -> str:
    """Run `python cli.py ...` in a fresh process (DDP's launcher re-executes the script per rank);
    assert it succeeds and return its output."""
    result = subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), *args],
        cwd=ROOT,
        env=cli_environment(**env),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    return result.stdout + result.stderr


def base_args(model: Path, data_root: Path, cache: Path, task: str) -> list[str]:
    """The tiny end-to-end settings of `task` with `model` as model and tokenizer, no run folder."""
    return [
        "--config",
        str(CONF),
        "--data.task",
        task,
        "--data.data_dir",
        str(data_root),
        "--data.cache_dir",
        str(cache),
        "--data.tokenizer",
        str(model),
        "--model.model_name_or_path",
        str(model),
    ]


def tiny_args(tiny_t5: Path, data_root: Path, tmp_path: Path, task: str) -> list[str]:
    """Command-line arguments of a tiny end-to-end run of `task` in `tmp_path`."""
    return [
        *base_args(tiny_t5, data_root, tmp_path / "cache", task),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]


def bm25_data(data_dir: Path, cache: Path, tokenizer: Path, task: str = "LaMP_2", **overrides) -> dict:
    """The keyword arguments (the config's `data:` section) of a tiny BM25 pipeline over `data_dir`."""
    return {
        "task": task,
        "data_dir": str(data_dir),
        "cache_dir": str(cache),
        "tokenizer": str(tokenizer),
        "k": 2,
        "retrieval": {"retriever": "bm25"},
        "max_input_length": 96,
        "max_target_length": 16,
        **overrides,
    }


def save_generator(tiny_t5: Path, path: Path) -> Path:
    """A Lightning checkpoint of the tiny T5 generator, as `lamp-pl fit` writes them."""
    import lightning as L

    from lamp_pl.lightning.module import LaMPModel

    module = LaMPModel(model_name_or_path=str(tiny_t5), task="LaMP_2", tokenizer=str(tiny_t5))
    module.configure_model()  # the network is built here (not in __init__), as Lightning does before fit
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path
