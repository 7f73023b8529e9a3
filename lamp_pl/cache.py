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


HASH_STORE_FORMAT = 1
HASH_STORE = ".hashes"
"""The folder, under a cache dir, of `file_sha256_by_state`'s sidecars."""


def file_sha256_by_state(path: str | Path, store: str | Path) -> str:
    """`file_sha256`, computed once per file state (size and mtime) across processes and ranks.

    The digest is recorded in a small JSON sidecar under `store` (named after the file's absolute
    path, written atomically); a later process whose file still has the recorded size and mtime
    reads the digest instead of rehashing. A store that cannot be written (read-only disk) only
    costs the rehash.
    """
    path = Path(path).resolve()
    stat = path.stat()
    state = {"format": HASH_STORE_FORMAT, "path": str(path), "size": stat.st_size, "mtime_ns": stat.st_mtime_ns}
    sidecar = Path(store) / f"{stable_hash(str(path))}.json"
    try:
        recorded = json.loads(sidecar.read_text())
        if {k: recorded.get(k) for k in state} == state and isinstance(recorded.get("sha256"), str):
            return recorded["sha256"]
    except (OSError, ValueError):
        pass  # missing or damaged sidecar: hash again and rewrite it
    digest = file_sha256(path)
    try:
        write_text_atomic(sidecar, json.dumps({**state, "sha256": digest}))
    except OSError:
        pass
    return digest


_WEIGHT_SUFFIXES = (".safetensors", ".bin", ".pt", ".pth", ".ckpt", ".h5", ".msgpack", ".onnx", ".gguf")


def tokenizer_fingerprint(name_or_path: str) -> str:
    """What a tokenizer's output depends on, as a short hash: a folder's files by content (model
    weights left out, they tokenize nothing); a hub name's locally cached snapshot the same way,
    or the name itself when nothing is cached; a `synthetic:` tokenizer by name and lamp_pl
    version (the code that trains it)."""
    import lamp_pl

    if name_or_path.startswith("synthetic:"):
        return stable_hash([name_or_path, lamp_pl.__version__])
    folder = Path(name_or_path)
    if not folder.is_dir():
        try:
            from huggingface_hub import snapshot_download

            folder = Path(snapshot_download(name_or_path, local_files_only=True))
        except Exception:  # noqa: BLE001 -- not cached locally (or not a hub name): the name is all we know
            return stable_hash(["name", name_or_path])
    files = sorted(p for p in folder.rglob("*") if p.is_file() and not p.name.endswith(_WEIGHT_SUFFIXES))
    return stable_hash([(str(p.relative_to(folder)), file_sha256_cached(p)) for p in files])
