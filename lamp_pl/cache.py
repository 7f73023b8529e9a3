"""What every on-disk cache of lamp_pl shares: the hashes that key it, writes that appear whole
or not at all (a killed process leaves at most a hidden temporary next to the target), and a
content checksum of every file, recorded while it is written and verified when it is opened.

Checksums are blake2b (stdlib; 16-byte digests). A file's record is ``{"size": n, "blake2b": hex}``;
a folder's records map its relative file names to theirs. Opening checks sizes always and
checksums of files up to `SMALL_FILE` bytes; a full check (`full=True`) checksums everything.
"""

from __future__ import annotations

import contextlib
import errno
import functools
import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping
from contextvars import ContextVar
from pathlib import Path

from filelock import FileLock

from lamp_pl.errors import LaMPError, NoSpaceError, one_line


class CacheError(LaMPError, RuntimeError):
    """A cache folder is missing, stale or unreadable; the message says which and why."""


COMPLETE = ".complete"
SMALL_FILE = 16 << 20
"""Files up to this size are checksummed on every open; larger ones on a full check only."""
_BLOCK = 1 << 20
_FULL_CHECK: ContextVar[bool] = ContextVar("lamp_pl_full_check", default=False)
logger = logging.getLogger(__name__)


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


class ChecksumWriter:
    """A binary file wrapper that digests and counts every byte written through it.

    It has no `tell`/`seek` on purpose: `zipfile` (hence `np.savez`) then writes strictly
    sequentially, so the digest of the stream is the digest of the file.
    """

    def __init__(self, stream) -> None:
        self._stream, self._digest, self.size = stream, hashlib.blake2b(digest_size=16), 0

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        self._digest.update(view)
        self.size += len(view)
        return self._stream.write(view)

    def flush(self) -> None:
        self._stream.flush()

    def writelines(self, chunks: Iterable[bytes]) -> None:
        for chunk in chunks:
            self.write(chunk)

    def read(self, *_: object) -> bytes:  # present so numpy takes us for a file object; never called
        raise OSError("a ChecksumWriter is write-only")

    def record(self) -> dict:
        """What the manifest stores for the file written so far."""
        return {"size": self.size, "blake2b": self._digest.hexdigest()}


def write_checksummed(path: str | Path, write: Callable[[ChecksumWriter], object]) -> dict:
    """Create `path`, let `write` fill it through a `ChecksumWriter`, and return its record."""
    with open(path, "wb") as stream:
        writer = ChecksumWriter(stream)
        write(writer)
    return writer.record()


def write_file_atomic(path: str | Path, write: Callable[[ChecksumWriter], object] | Iterable[bytes]) -> dict:
    """`write_checksummed` through a temporary sibling renamed into place; `write` is a callable
    or an iterable of byte chunks. Returns the file's record."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fill = write if callable(write) else lambda out: out.writelines(write)
    handle, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(handle)
    try:
        with naming_full_disk(path):
            record = write_checksummed(tmp, fill)
            os.replace(tmp, path)
    finally:
        Path(tmp).unlink(missing_ok=True)
    return record


def file_record(path: str | Path) -> dict:
    """The record of a file written by other means (a memory map, a library), read back once."""
    digest, size = hashlib.blake2b(digest_size=16), 0
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(_BLOCK), b""):
            digest.update(block)
            size += len(block)
    return {"size": size, "blake2b": digest.hexdigest()}


def folder_records(folder: str | Path, skip: Iterable[str] = ()) -> dict[str, dict]:
    """Records of every file under `folder` (relative names), except `skip`."""
    folder, skip = Path(folder), set(skip)
    return {
        str(p.relative_to(folder)): file_record(p)
        for p in sorted(folder.rglob("*"))
        if p.is_file() and str(p.relative_to(folder)) not in skip
    }


@contextlib.contextmanager
def full_checks() -> Iterator[None]:
    """Within this block every cache opened is checksummed in full (`lamp-pl index --verify`)."""
    token = _FULL_CHECK.set(True)
    try:
        yield
    finally:
        _FULL_CHECK.reset(token)


def verify_files(folder: str | Path, records: Mapping[str, dict], full: bool = False) -> list[str]:
    """What is wrong with the files of `folder` against their `records` (empty: all good).

    Sizes are always compared; checksums for files up to `SMALL_FILE` bytes, or all with `full`
    (or inside `full_checks`).
    """
    full = full or _FULL_CHECK.get()
    problems = []
    for name, record in records.items():
        path = Path(folder) / name
        try:
            size = path.stat().st_size
            if size != record["size"]:
                problems.append(f"{name}: {size} bytes, {record['size']} expected (truncated or overwritten)")
            elif (full or size <= SMALL_FILE) and file_record(path)["blake2b"] != record["blake2b"]:
                problems.append(f"{name}: checksum mismatch (damaged content)")
        except OSError as error:
            problems.append(f"{name}: unreadable ({error.strerror or error})")
        except (KeyError, TypeError):
            problems.append(f"{name}: malformed checksum record")
    return problems


def write_text_atomic(path: str | Path, text: str) -> Path:
    """Write `text` through a temporary sibling renamed into place; readers never see half a file."""
    write_file_atomic(path, [text.encode()])
    return Path(path)


def no_space(error: OSError, path: str | Path, needed: int | None = None) -> OSError:
    """An ENOSPC/EFBIG/EDQUOT `OSError` restated as a `NoSpaceError` that says so in one line,
    else `error` itself."""
    if error.errno not in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return error
    free = shutil.disk_usage(Path(path).parent).free
    wanted = f"{needed} bytes needed, " if needed is not None else ""
    return NoSpaceError(
        f"No space left to write {path} ({wanted}{free} bytes free; {error.strerror}): "
        "free some space or point the cache elsewhere"
    )


_FULL_MARKERS = ("no space left on device", "file too large", "disk quota exceeded", "os error 28", "os error 27")


def is_disk_full(error: BaseException) -> bool:
    """Whether `error` says the disk (or a file-size limit or quota) ran out: an `OSError` with
    that errno, or a library's wrapping of one (pyarrow, safetensors) that says so."""
    if isinstance(error, OSError) and error.errno in (errno.ENOSPC, errno.EFBIG, errno.EDQUOT):
        return True
    return any(marker in str(error).lower() for marker in _FULL_MARKERS)


@contextlib.contextmanager
def naming_full_disk(path: str | Path) -> Iterator[None]:
    """Within this block, a full disk while writing `path` is a `NoSpaceError` naming `path`."""
    try:
        yield
    except NoSpaceError:
        raise
    except Exception as error:
        if not is_disk_full(error):
            raise
        try:
            free: int | str = shutil.disk_usage(Path(path).parent).free
        except OSError:
            free = "?"
        raise NoSpaceError(
            f"No space left to write {path} ({free} bytes free; {one_line(error)}): "
            "free some space or point the cache elsewhere"
        ) from None


def preallocate(path: str | Path, size: int) -> None:
    """Reserve `size` bytes for `path` with real blocks, so that a memory map over it never
    faults (SIGBUS) on a full disk: the shortage is an `OSError` here instead."""
    with open(path, "r+b") as stream:
        try:
            os.posix_fallocate(stream.fileno(), 0, size)
        except OSError as error:
            if error.errno not in (errno.EOPNOTSUPP, errno.EINVAL, errno.ENOSYS):
                raise no_space(error, path, size) from None
            start = os.fstat(stream.fileno()).st_size  # no fallocate here: write zeros after the header
            stream.seek(start)
            try:
                for at in range(start, size, _BLOCK):
                    stream.write(bytes(min(_BLOCK, size - at)))
                stream.flush()
            except OSError as write_error:
                raise no_space(write_error, path, size) from None


def is_complete(folder: str | Path) -> bool:
    """Whether `atomic_folder` finished building `folder`."""
    return (Path(folder) / COMPLETE).is_file()


def verify_folder(folder: str | Path, full: bool = False) -> list[str]:
    """Problems of a folder built by `atomic_folder` against the records in its marker (a marker
    of an older lamp_pl without records verifies nothing)."""
    try:
        text = (Path(folder) / COMPLETE).read_text()
    except OSError as error:
        return [f"{COMPLETE}: unreadable ({error})"]
    try:
        records = json.loads(text)["files"]
    except (ValueError, KeyError, TypeError):
        return [] if text.strip() == "ok" else [f"{COMPLETE}: malformed"]
    return verify_files(folder, records, full)


def swap_in(tmp: Path, dest: Path, done: Callable[[Path], bool] = is_complete) -> bool:
    """Move the finished folder `tmp` to `dest`, replacing an older `dest`.

    Safe against other processes doing the same: when one of them put a folder in place that
    `done` accepts, ours is discarded. Returns whether ours was moved in.
    """
    for _ in range(100):
        if dest.exists():
            if done(dest):
                shutil.rmtree(tmp, ignore_errors=True)
                return False
            trash = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old."))
            try:
                os.replace(dest, trash / "old")
            except FileNotFoundError:  # another process moved it first
                pass
            shutil.rmtree(trash, ignore_errors=True)
        try:
            os.replace(tmp, dest)
            return True
        except OSError as error:  # another process's folder landed between our two renames
            if error.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
    raise OSError(f"could not move {tmp} to {dest}: other processes keep replacing it")


def remove_leftovers(dest: Path) -> None:
    """Delete the temporary siblings of `dest` that killed writers left (call it under the lock)."""
    for stale in dest.parent.glob(f".{dest.name}.*"):
        if stale.is_dir():
            shutil.rmtree(stale, ignore_errors=True)
        else:
            stale.unlink(missing_ok=True)


def folder_is_valid(dest: str | Path) -> bool:
    """Whether `dest` is a complete `atomic_folder` whose files match their records (a damaged
    one is logged as a warning)."""
    if not is_complete(dest):
        return False
    problems = verify_folder(dest)
    if problems:
        logger.warning("cache %s is damaged, rebuilding it: %s", dest, "; ".join(problems))
    return not problems


def atomic_folder(dest: str | Path, build: Callable[[Path], None]) -> Path:
    """Build a folder in a temporary sibling and rename it into place, marked complete with the
    checksums of its files; a complete, intact folder is reused as it is (without taking the
    lock, so a read-only cache works), a damaged one rebuilt, and a killed build leaves nothing
    under `dest` (its temporary is removed by the next build, under the lock)."""
    dest = Path(dest)
    if folder_is_valid(dest):
        return dest
    dest.parent.mkdir(parents=True, exist_ok=True)
    with FileLock(f"{dest}.lock"):
        if is_complete(dest) and not verify_folder(dest):  # built by another process meanwhile
            return dest
        remove_leftovers(dest)
        tmp = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}."))
        try:
            with naming_full_disk(dest):
                build(tmp)
                write_text_atomic(tmp / COMPLETE, json.dumps({"files": folder_records(tmp)}, indent=1))
            swap_in(tmp, dest, lambda d: is_complete(d) and not verify_folder(d))
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
