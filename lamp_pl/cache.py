"""What every on-disk cache of lamp_pl shares: the hashes that key it, and writes that appear
whole or not at all (a killed process leaves at most a hidden temporary next to the target)."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

COMPLETE = ".complete"


def stable_hash(value: object, length: int = 16) -> str:
    """Hex digest of a JSON-able value, independent of dict order and of the Python process."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    """sha256 of a file's content, read in blocks (data files can be hundreds of MB)."""
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@functools.lru_cache(maxsize=256)
def _sha256_of_version(path: str, size: int, mtime_ns: int) -> str:
    return file_sha256(path)


def file_sha256_cached(path: str | Path) -> str:
    """`file_sha256`, computed once per file version (path, size, mtime) in this process."""
    stat = os.stat(path)
    return _sha256_of_version(str(Path(path).resolve()), stat.st_size, stat.st_mtime_ns)


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` through a temporary sibling renamed into place; readers never see half a file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(text)
        os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return path


def is_complete(folder: str | Path) -> bool:
    """Whether `atomic_folder` finished building `folder`."""
    return (Path(folder) / COMPLETE).is_file()


def atomic_folder(dest: str | Path, build: Callable[[Path], None]) -> Path:
    """Build a folder in a temporary sibling and rename it into place, marked complete; a folder
    already complete is reused as it is, and a killed build leaves nothing under `dest`."""
    dest = Path(dest)
    if is_complete(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
    try:
        build(tmp)
        (tmp / COMPLETE).write_text("ok\n")
        if dest.exists():
            shutil.rmtree(dest)
        os.replace(tmp, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest
