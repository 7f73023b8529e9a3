"""Per-user LoRA adapters on disk: one safetensors file per user, written atomically.

The folder also holds `adapters.json` (the LoRA settings every file was trained with), so the
evaluation rebuilds the same adapter slot. A user's file either exists whole or not at all, which
is what lets a rerun skip finished users.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path

import torch

from lamp_pl.cache import stable_hash, write_text_atomic
from lamp_pl.errors import ConfigError

SETTINGS = "adapters.json"


def adapter_path(folder: str | Path, user: str) -> Path:
    """The file of `user`'s adapter (a readable stem plus a hash, safe for any user id)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(user))[:60]
    return Path(folder) / f"{stem}-{stable_hash(str(user), 8)}.safetensors"


def save_adapter(folder: str | Path, user: str, state: dict[str, torch.Tensor]) -> int:
    """Write `user`'s LoRA state atomically; return its size in bytes."""
    from safetensors.torch import save_file

    path = adapter_path(folder, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, tmp, metadata={"user": str(user)})
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path.stat().st_size


def load_adapter(folder: str | Path, user: str) -> dict[str, torch.Tensor] | None:
    """`user`'s LoRA state, or None when the user has no adapter."""
    from safetensors.torch import load_file

    path = adapter_path(folder, user)
    return load_file(str(path)) if path.is_file() else None


def write_settings(folder: str | Path, settings: dict) -> None:
    """Record the LoRA settings; refuse to mix adapters trained with different ones."""
    path = Path(folder) / SETTINGS
    if path.is_file():
        old = json.loads(path.read_text())
        if old != settings:
            raise ConfigError(f"{path}: adapters here were trained with {old}, not {settings}; use another folder")
        return
    write_text_atomic(path, json.dumps(settings, indent=1, sort_keys=True))


def read_settings(folder: str | Path) -> dict:
    path = Path(folder) / SETTINGS
    if not path.is_file():
        raise FileNotFoundError(f"{folder} holds no {SETTINGS}: not a folder written by fit_users")
    return json.loads(path.read_text())
