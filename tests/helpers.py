"""Helpers shared by test files (import as `from helpers import ...`; tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


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

    from lamp_pl.module import LaMPModel

    module = LaMPModel(model_name_or_path=str(tiny_t5), task="LaMP_2", tokenizer=str(tiny_t5))
    module.configure_model()  # the network is built here (not in __init__), as Lightning does before fit
    trainer = L.Trainer(accelerator="cpu", devices=1, logger=False, enable_progress_bar=False)
    trainer.strategy.connect(module)
    trainer.save_checkpoint(path)
    return path
