"""Per-user LoRA adapters on disk: a cache like the others, one checksummed file per user.

Each user's adapter is a safetensors file written atomically, then its record (size and blake2b
checksum, `lamp_pl.cache.file_record`) in a sidecar ``<file>.json`` written atomically too: the
sidecar is the mark of a finished adapter. A rerun of `fit_users` skips a user whose file matches
its record and retrains (with a warning) one whose file is damaged, truncated or unrecorded;
`test_users` refuses a damaged adapter, naming its file. The folder also holds `adapters.json`
(the LoRA settings every file was trained with), so the evaluation rebuilds the same adapter slot.
File names are a readable stem of the user id plus a hash; never hidden files (no leading dot).
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path

import torch

from lamp_pl.cache import file_record, naming_full_disk, stable_hash, verify_files, write_text_atomic
from lamp_pl.errors import ConfigError, LaMPError, MissingDataError, reading

SETTINGS = "adapters.json"
RECORD_SUFFIX = ".json"
logger = logging.getLogger(__name__)


class DamagedAdapterError(LaMPError):
    """A user's adapter file does not match the checksum recorded when it was written."""


def adapter_path(folder: str | Path, user: str) -> Path:
    """The file of `user`'s adapter (a readable stem plus a hash, safe for any user id, never a
    hidden file)."""
    stem = re.sub(r"[^A-Za-z0-9_.-]", "_", str(user))[:60].lstrip(".") or "user"
    return Path(folder) / f"{stem}-{stable_hash(str(user), 8)}.safetensors"


def record_path(path: Path) -> Path:
    """The sidecar holding the size and checksum of the adapter file `path`."""
    return path.with_name(path.name + RECORD_SUFFIX)


def save_adapter(folder: str | Path, user: str, state: dict[str, torch.Tensor]) -> int:
    """Write `user`'s LoRA state atomically, then its checksum record; return its size in bytes."""
    from safetensors.torch import save_file

    path = adapter_path(folder, user)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    os.close(handle)
    try:
        with naming_full_disk(path):
            save_file({k: v.detach().contiguous().cpu() for k, v in state.items()}, tmp, metadata={"user": str(user)})
            record = file_record(tmp)
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    write_text_atomic(record_path(path), json.dumps({"file": path.name, **record}))
    return record["size"]


def adapter_problems(folder: str | Path, user: str) -> list[str] | None:
    """None when `user` has no adapter file; else what is wrong with it (empty: intact)."""
    path = adapter_path(folder, user)
    if not path.is_file():
        return None
    try:
        record = json.loads(record_path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return [f"{path.name}: no checksum record (written by an older or killed fit-users)"]
    if not isinstance(record, dict):
        return [f"{path.name}: malformed checksum record"]
    return verify_files(path.parent, {path.name: record}, full=True)


def is_finished(folder: str | Path, user: str) -> bool:
    """Whether `user`'s adapter is written and intact; a damaged one is logged as a warning."""
    problems = adapter_problems(folder, user)
    if problems:
        logger.warning("adapter %s is damaged, retraining it: %s", adapter_path(folder, user), "; ".join(problems))
    return problems == []


def check_adapters(folder: str | Path) -> int:
    """Verify every adapter file of `folder` against its checksum record before any work;
    return how many there are.

    Raises:
        DamagedAdapterError: naming the first damaged file.
    """
    files = sorted(Path(folder).glob("*.safetensors"))
    for path in files:
        record = record_path(path)
        try:
            problems = verify_files(path.parent, {path.name: json.loads(record.read_text(encoding="utf-8"))}, full=True)
        except (OSError, ValueError, TypeError):
            problems = [f"{path.name}: no checksum record (written by an older or killed fit-users)"]
        if problems:
            raise DamagedAdapterError(f"{path}: damaged adapter ({'; '.join(problems)}); rerun fit-users to retrain it")
    return len(files)


def read_lora(path: str | Path, what: str = "adapter") -> dict[str, torch.Tensor]:
    """The tensors of a LoRA ``.safetensors`` file.

    Raises:
        DamagedAdapterError: the file is truncated or not a safetensors file (naming it).
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        return load_file(str(path))
    except (SafetensorError, OSError) as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise DamagedAdapterError(f"{path}: not a readable {what} file ({detail}); train it again") from None


def load_adapter(folder: str | Path, user: str) -> dict[str, torch.Tensor] | None:
    """`user`'s LoRA state, or None when the user has no adapter.

    Raises:
        DamagedAdapterError: the file does not match its checksum record (naming the file).
    """
    problems = adapter_problems(folder, user)
    if problems is None:
        return None
    path = adapter_path(folder, user)
    if problems:
        raise DamagedAdapterError(
            f"{path}: damaged adapter of user {user!r} ({'; '.join(problems)}); rerun fit-users to retrain it"
        )
    return read_lora(path)


def write_settings(folder: str | Path, settings: dict) -> None:
    """Record the LoRA settings; refuse to mix adapters trained with different ones."""
    path = Path(folder) / SETTINGS
    if path.is_file():
        with reading(path, "adapter settings"):
            old = json.loads(path.read_text(encoding="utf-8"))
        if old != settings:
            raise ConfigError(f"{path}: adapters here were trained with {old}, not {settings}; use another folder")
        return
    write_text_atomic(path, json.dumps(settings, indent=1, sort_keys=True))


def read_settings(folder: str | Path) -> dict:
    """The LoRA settings of a folder written by `fit_users`."""
    path = Path(folder) / SETTINGS
    if not Path(folder).is_dir():
        raise MissingDataError(f"{folder}: no such adapters folder (write it with `lamp-pl fit-users --out`)")
    if not path.is_file():
        raise MissingDataError(f"{folder}: holds no {SETTINGS}: not a folder written by fit-users")
    with reading(path, "adapter settings"):
        settings = json.loads(path.read_text(encoding="utf-8"))
    if not isinstance(settings, dict) or "task" not in settings:
        raise ConfigError(f"{path}: malformed adapter settings (expected an object with 'task')")
    return settings
