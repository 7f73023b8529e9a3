"""Helpers shared by test files (import as `from helpers import ...`; tests/ is on sys.path)."""

from __future__ import annotations

from pathlib import Path

CONF = Path(__file__).parent / "conf" / "tiny.yaml"


def tiny_args(tiny_t5: Path, data_root: Path, tmp_path: Path, task: str) -> list[str]:
    """Command-line arguments of a tiny end-to-end run of `task` in `tmp_path`."""
    return [
        "--config",
        str(CONF),
        "--data.task",
        task,
        "--data.data_dir",
        str(data_root),
        "--data.cache_dir",
        str(tmp_path / "cache"),
        "--data.tokenizer",
        str(tiny_t5),
        "--model.model_name_or_path",
        str(tiny_t5),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
