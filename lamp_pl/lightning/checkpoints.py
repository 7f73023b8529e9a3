"""Loading Lightning checkpoints with ``weights_only=True``, refused in lamp_pl's own words.

Every place that reads a checkpoint (`--ckpt_path` of the Lightning commands, a resumed `fit`,
`export`, `fit-users`, `test-users`, the learned-retrieval recipe) goes through `load_checkpoint`
or `check_checkpoint`. A checkpoint that holds a pickled object is refused as
``<path> holds pickled objects; lamp_pl loads weights only and will not run them``; torch's own
message (which suggests loading it unsafely) never reaches the user.
"""

from __future__ import annotations

import pickle
import zipfile
from pathlib import Path
from typing import Any

from lamp_pl.errors import PICKLED, CheckpointError, is_weights_only_refusal

KEYWORDS = ("best", "last", "hpc", "registry")
"""`--ckpt_path` values that Lightning (or `lamp_pl.cli.runs`) resolves itself: not file paths."""


def _refusal(path: Path, error: BaseException) -> CheckpointError:
    # torch words random bytes as a refused unpickling too ("Unsupported operand"): only a
    # refused global is a pickled object; anything else is a file that is no checkpoint.
    if is_weights_only_refusal(error) and "Unsupported global" in str(error):
        return CheckpointError(PICKLED.format(path=path))
    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    if is_weights_only_refusal(error):  # torch's advice left out: the unpickler's own reason
        lines = [line for line in lines if "weights_only" not in line and "WeightsUnpickler" not in line]
    first = (lines or [type(error).__name__])[0]
    return CheckpointError(f"{path}: not a readable PyTorch checkpoint ({first[:200]})")


def load_checkpoint(path: str | Path, map_location: Any = "cpu", mmap: bool = False) -> dict:
    """`torch.load(path, weights_only=True)`, with every failure a `CheckpointError` naming `path`.

    Args:
        path: The checkpoint file.
        map_location: Where tensors go (CPU by default).
        mmap: Memory-map the tensors instead of reading them (for a cheap check).

    Raises:
        CheckpointError: the file is missing, is not a checkpoint, or holds pickled objects.
    """
    import torch

    path = Path(path)
    if not path.is_file():
        what = "is a folder, not a checkpoint file" if path.is_dir() else "no such checkpoint file"
        raise CheckpointError(f"{path}: {what}")
    try:
        state = torch.load(path, map_location=map_location, weights_only=True, mmap=mmap)
    except (pickle.UnpicklingError, RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile) as error:
        raise _refusal(path, error) from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: not a Lightning checkpoint (holds a {type(state).__name__}, not a dict)")
    return state


def load_mapped(path: str | Path) -> dict:
    """`load_checkpoint` with the tensors memory-mapped, not read: a cheap look at a checkpoint's
    metadata (callback states, hyper-parameters) or a check that it loads at all."""
    try:
        return load_checkpoint(path, mmap=True)
    except CheckpointError as error:
        if "mmap" not in str(error):
            raise
        return load_checkpoint(path)  # a legacy (non-zip) file cannot be memory-mapped: read it whole


def check_checkpoint(path: str | Path) -> Path:
    """Check that `path` loads with ``weights_only=True`` (memory-mapped, so large files cost
    little) before Lightning or a model reads it; return it."""
    load_mapped(path)
    return Path(path)


def check_ckpt_argument(value: Any) -> None:
    """`check_checkpoint` for a `--ckpt_path` value that names a file (not `best`, `last`...)."""
    if value is None or str(value) in KEYWORDS or "://" in str(value):
        return
    check_checkpoint(value)


__all__ = ["KEYWORDS", "check_checkpoint", "check_ckpt_argument", "load_checkpoint", "load_mapped"]
