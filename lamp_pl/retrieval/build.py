"""Building a `ProfileIndex` cache folder: locked, atomic and, across DDP ranks, sharded.

`build_profile_index` opens the cache for (task, questions files, encoder) and builds it when it
is missing or stale (its manifest key differs). A build writes the whole folder into a temporary
sibling and moves it into place with `os.replace`, writing the manifest last, under a file lock
(`<folder>.lock`); leftovers of killed builds are removed under that lock. With several ranks,
each encodes a contiguous shard of the distinct texts and rank 0 assembles the store.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

import lamp_pl
from lamp_pl.data.lamp import LaMPQuestion, load_split, split_files
from lamp_pl.retrieval.encoder import Encoder, EncoderSettings, encoder_slug
from lamp_pl.cache import file_record, file_sha256, no_space, preallocate, stable_hash, swap_in, write_checksummed
from lamp_pl.retrieval.index import CacheError, JsonLines, ProfileIndex, check_cache
from lamp_pl.tasks import Task

FORMAT = 1


def replace_folder(tmp: Path, dest: Path) -> None:
    """Move a completed `tmp` folder to `dest`, replacing an old `dest` (retrying when another
    process's folder lands between the two renames, instead of failing with ENOTEMPTY)."""
    swap_in(tmp, dest, done=lambda _: False)


def _save_npy(folder: Path, name: str, array: np.ndarray) -> dict[str, dict]:
    return {name: write_checksummed(folder / name, lambda stream: np.save(stream, array))}


@dataclass
class Tables:
    """Items, texts and users of all splits, deduplicated, in memory (before writing)."""

    item_lines: list[str]
    """Each distinct item as a JSON line (its first occurrence's key order)."""
    texts: list[str]
    """Distinct texts to encode, in store row order: item retrieval texts and queries."""
    item_text: list[int]
    users: list[str]
    user_items: list[list[int]]
    splits: dict[str, dict[str, np.ndarray]]

    @classmethod
    def collect(cls, task: Task, splits: dict[str, list[LaMPQuestion]]) -> Tables:
        items: dict[str, int] = {}
        texts: dict[str, int] = {}
        users: dict[str, int] = {}
        item_lines: list[str] = []
        item_text: list[int] = []
        user_items: list[set[int]] = []
        tables: dict[str, dict[str, np.ndarray]] = {}
        for split, questions in splits.items():
            offsets, rows, owner, query_rows = [0], [], [], []
            for question in questions:
                user = users.setdefault(question.user, len(users))
                if user == len(user_items):
                    user_items.append(set())
                for item in question.profile:
                    key = json.dumps(item, sort_keys=True, ensure_ascii=False)
                    row = items.setdefault(key, len(items))
                    if row == len(item_lines):
                        item_lines.append(json.dumps(item, ensure_ascii=False))
                        item_text.append(texts.setdefault(task.item_text(item), len(texts)))
                    rows.append(row)
                    user_items[user].add(row)
                offsets.append(len(rows))
                owner.append(user)
                query_rows.append(texts.setdefault(task.query(question.input) or "", len(texts)))
            tables[split] = {"question_ids": np.array([q.id for q in questions], dtype=str),
                             **{name: np.array(values, dtype=np.int64) for name, values in
                                (("users", owner), ("query_rows", query_rows), ("offsets", offsets), ("items", rows))}}
        return cls(item_lines, list(texts), item_text, list(users), [sorted(s) for s in user_items], tables)

    def counts(self, dim: int | None) -> dict:
        return {"items": len(self.item_lines), "distinct_item_texts": len(set(self.item_text)),
                "texts": len(self.texts), "users": len(self.users), "dim": dim,
                "questions": {s: len(t["question_ids"]) for s, t in self.splits.items()}}

    def write(self, folder: Path) -> dict[str, dict]:
        """Write every table file; returns their checksum records (for the manifest) by name."""
        files = {}
        for split, arrays in self.splits.items():
            files[f"split-{split}.npz"] = write_checksummed(folder / f"split-{split}.npz",
                                                            lambda stream, arrays=arrays: np.savez(stream, **arrays))
        files |= JsonLines.write(folder / "items.jsonl", self.item_lines, encoded=True)
        files |= JsonLines.write(folder / "texts.jsonl", self.texts)
        files |= JsonLines.write(folder / "users.jsonl", self.users)
        files |= _save_npy(folder, "item_text.npy", np.array(self.item_text, dtype=np.int64))
        files |= _save_npy(folder, "user_offsets.npy",
                           np.cumsum([0] + [len(s) for s in self.user_items], dtype=np.int64))
        files |= _save_npy(folder, "user_items.npy", np.array([r for s in self.user_items for r in s], dtype=np.int64))
        return files


def manifest_key(task: Task, inputs: dict[str, Path], encoder: dict | None) -> dict:
    """What a cache is built from; any difference means a rebuild."""
    return {"format": FORMAT, "lamp_pl_version": lamp_pl.__version__, "task": task.name,
            "inputs": {s: {"file": p.name, "sha256": file_sha256(p)} for s, p in sorted(inputs.items())},
            "encoder": encoder}


def write_manifest(folder: Path, key: dict, counts: dict, info: dict, files: dict[str, dict]) -> None:
    """Written last: a folder without it never loads. `files` holds each file's checksum record."""
    (folder / "manifest.json").write_text(json.dumps({"key": key, "counts": counts, "info": info, "files": files},
                                                     indent=1))


def open_store(path: Path, shape: tuple[int, int]) -> np.memmap:
    """A new float32 .npy memmap whose blocks are allocated up front: a full disk is a clear
    `NoSpaceError` here, not a SIGBUS when a page of the map is first written."""
    header = {"descr": np.lib.format.dtype_to_descr(np.dtype(np.float32)), "fortran_order": False, "shape": shape}
    try:
        with open(path, "wb") as stream:
            np.lib.format.write_array_header_1_0(stream, header)
            offset = stream.tell()
    except OSError as error:
        raise no_space(error, path) from None
    preallocate(path, offset + 4 * shape[0] * shape[1])
    return np.lib.format.open_memmap(path, mode="r+")


def _shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    return n * rank // world_size, n * (rank + 1) // world_size


def _encode_into(path: Path, texts: Sequence[str], encoder: Encoder) -> None:
    """Stream encodings of `texts` into a new .npy memmap at `path`, renamed into place when full,
    so a half-written file never has the final name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    try:
        store = open_store(tmp, (len(texts), encoder.dim))
        encoder.encode(texts, store, desc=f"encoding {path.stem}")
        store.flush()
        del store
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


def _load_tables(task: Task, data_dir: str | Path, splits: Sequence[str]) -> Tables:
    return Tables.collect(task, {s: load_split(data_dir, task, s) for s in splits})


def _assemble(load: Callable[[], Tables], inputs: dict[str, Path], key: dict, folder: Path, build_dir: Path | None,
              settings: EncoderSettings | None, world_size: int, tables: Tables | None,
              progress: bool) -> tuple[int, float]:
    """Write the whole cache into a temporary sibling of `folder` and move it into place.

    With a `build_dir`, the store is copied from the ranks' shard files there (a missing shard,
    from a rank that thought the cache valid, is encoded here). Returns (texts encoded, seconds).
    """
    tables = tables or load()
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    encoded, seconds, dim = 0, 0.0, None
    encoder: Encoder | None = None
    try:
        files = tables.write(tmp)
        if settings is not None:
            start = time.perf_counter()
            if build_dir is None:
                encoder = settings.build(progress)
                _encode_into(tmp / "embeddings.npy", tables.texts, encoder)
                encoded = len(tables.texts)
            else:
                shards = []
                for r in range(world_size):
                    lo, hi = _shard_bounds(len(tables.texts), r, world_size)
                    path = build_dir / f"shard-{r:03d}-of-{world_size:03d}.npy"
                    if not path.is_file():
                        encoder = encoder or settings.build(progress)
                        _encode_into(path, tables.texts[lo:hi], encoder)
                        encoded += hi - lo
                    shards.append((lo, hi, np.load(path, mmap_mode="r")))
                dim = shards[0][2].shape[1]
                store = open_store(tmp / "embeddings.npy", (len(tables.texts), dim))
                for lo, hi, shard in shards:
                    if shard.shape != (hi - lo, dim):
                        raise CacheError(f"shard {shard.filename} has shape {shard.shape}, expected {(hi - lo, dim)}")
                    for at in range(0, hi - lo, 1 << 16):  # chunked: memory bounded by the chunk, not the store
                        store[lo + at:lo + min(at + (1 << 16), hi - lo)] = shard[at:at + (1 << 16)]
                store.flush()
                del store, shards
            seconds = time.perf_counter() - start
            dim = np.load(tmp / "embeddings.npy", mmap_mode="r").shape[1]
            # Written out of order through a memory map, so read back once (from the page cache).
            files["embeddings.npy"] = file_record(tmp / "embeddings.npy")
        info = {"encoded_here": encoded, "encode_seconds": seconds, "world_size": world_size,
                "stat": {s: [p.stat().st_size, p.stat().st_mtime_ns] for s, p in inputs.items()}}
        write_manifest(tmp, key, tables.counts(dim), info, files)
        replace_folder(tmp, folder)
    except OSError as error:
        raise no_space(error, tmp) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return encoded, seconds


def build_profile_index(task: Task, data_dir: str | Path, splits: Sequence[str], cache_dir: str | Path,
                        settings: EncoderSettings | None, *, rank: int = 0, world_size: int = 1,
                        barrier: Callable[[], None] | None = None, progress: bool = True) -> tuple[ProfileIndex, dict]:
    """Open the cache for (task, splits' questions files, encoder), building it when missing or stale.

    With ``world_size > 1`` every rank must call this (it calls `barrier` twice on each): each rank
    encodes its contiguous slice of the distinct texts into a shard file in a build folder named
    after the manifest hash, then rank 0 assembles the store, writes the manifest and moves the
    folder into place. A valid cache is a no-op on every rank: no encoder is created.

    Args:
        splits: every split the cache covers (their questions files are hashed into the manifest).
        settings: the encoder; None builds the tables only (for sparse retrievers).

    Returns:
        (the opened index, a summary with ``encoded``, ``encode_seconds``, ``reused`` and ``folder``).
    """
    if world_size > 1 and barrier is None:
        raise ValueError("a sharded build (world_size > 1) needs a barrier callable shared by all ranks")
    inputs = {s: split_files(data_dir, task, s)[0] for s in splits}
    key = manifest_key(task, inputs, settings.key() if settings else None)
    load = functools.partial(_load_tables, task, data_dir, splits)
    folder = Path(cache_dir) / task.name / (encoder_slug(settings.name) if settings else "no-encoder")
    if world_size == 1:  # a valid cache needs no lock (nor any write): a read-only cache works
        index = check_cache(folder, key, log=False)
        if index is not None:
            return index, {"encoded": 0, "encode_seconds": 0.0, "reused": True, "folder": str(folder)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{folder}.lock") if rank == 0 else contextlib.nullcontext()
    encoded, seconds, error = 0, 0.0, None
    with lock:
        if rank == 0:  # under the lock, temporary folders are leftovers of killed builds
            for stale in [*folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old.*")]:
                shutil.rmtree(stale, ignore_errors=True)
        index = check_cache(folder, key)
        build = index is None
        if world_size == 1:
            if build:
                encoded, seconds = _assemble(load, inputs, key, folder, None, settings, 1, None, progress)
        else:
            build_dir = folder.parent / f".{folder.name}.build-{stable_hash(key)}"
            tables = None
            try:
                if build:
                    tables = load()
                    if settings is not None:
                        build_dir.mkdir(exist_ok=True)
                        path = build_dir / f"shard-{rank:03d}-of-{world_size:03d}.npy"
                        lo, hi = _shard_bounds(len(tables.texts), rank, world_size)
                        if not path.is_file():  # a shard from an interrupted identical build is complete
                            start = time.perf_counter()
                            _encode_into(path, tables.texts[lo:hi], settings.build(progress))
                            encoded, seconds = hi - lo, time.perf_counter() - start
            except Exception as failure:  # noqa: BLE001 -- re-raised after the barriers, so no rank hangs
                error = failure
            barrier()
            if rank == 0:
                try:
                    if build and error is None:
                        more, _ = _assemble(load, inputs, key, folder, build_dir, settings, world_size, tables,
                                            progress)
                        encoded += more
                    shutil.rmtree(build_dir, ignore_errors=True)
                except Exception as failure:  # noqa: BLE001
                    error = failure
            barrier()
        if error is not None:
            raise error
        try:
            # Sharded: reopen even when valid here, in case rank 0 judged otherwise and rebuilt.
            # A fresh build is checksummed in full once (it is in the page cache now).
            index = ProfileIndex(folder, full_check=build and rank == 0) if build or world_size > 1 else index
        except CacheError as failure:
            raise CacheError(f"rank {rank}: the build did not produce a usable cache ({failure})") from failure
    return index, {"encoded": encoded, "encode_seconds": seconds, "reused": not build, "folder": str(folder)}


__all__ = ["FORMAT", "Tables", "build_profile_index", "manifest_key", "replace_folder", "write_manifest"]
