"""Building a `ProfileIndex` cache folder: locked, atomic and, across DDP ranks, sharded.

`build_profile_index` opens the cache for (task, questions files, encoder) and builds it when it
is missing or stale (its manifest key differs). A build writes the whole folder into a temporary
sibling and moves it into place with `os.replace`, writing the manifest last, under a file lock
(`<folder>.lock`); leftovers of killed builds are removed under that lock. The questions files
are streamed into the tables (`lamp_pl.retrieval.ingest`), never parsed whole. With several ranks,
rank 0 alone writes the tables, each rank encodes a contiguous shard of the distinct texts read
from the memory-mapped ``texts.jsonl``, and rank 0 assembles the store.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import shutil
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
from filelock import FileLock

import lamp_pl
from lamp_pl.cache import (
    HASH_STORE,
    file_record,
    file_sha256,
    file_sha256_by_state,
    no_space,
    stable_hash,
    swap_in,
)
from lamp_pl.data.lamp import split_files
from lamp_pl.retrieval.encoder import Encoder, EncoderSettings, encoder_slug
from lamp_pl.retrieval.index import CacheError, JsonLines, ProfileIndex, check_cache
from lamp_pl.retrieval.ingest import write_tables
from lamp_pl.retrieval.store import EmbeddingStore, Picked, open_store
from lamp_pl.tasks import Task

FORMAT = 1


def replace_folder(tmp: Path, dest: Path) -> None:
    """Move a completed `tmp` folder to `dest`, replacing an old `dest` (retrying when another
    process's folder lands between the two renames, instead of failing with ENOTEMPTY)."""
    swap_in(tmp, dest, done=lambda _: False)


def index_folder(cache_dir: str | Path, task: Task, settings: EncoderSettings | None) -> Path:
    """Where the index of (task, encoder settings) lives. The folder name carries a short hash of
    the settings that change embeddings, so two configs never rebuild each other's index."""
    if settings is None:
        return Path(cache_dir) / task.cache_name / "no-encoder"
    shaping = {
        "revision": settings.revision,
        "max_length": settings.max_length,
        "normalize": settings.normalize,
        "precision": settings.precision,
        "pooling": settings.pooling,
        "prefixes": [settings.query_prefix, settings.item_prefix],
    }
    return Path(cache_dir) / task.cache_name / f"{encoder_slug(settings.name)}-{stable_hash(shaping)[:8]}"


def manifest_key(
    task: Task, inputs: dict[str, Path], encoder: dict | None, sha256: Callable[[Path], str] = file_sha256
) -> dict:
    """What a cache is built from; any difference means a rebuild."""
    return {
        "format": FORMAT,
        "lamp_pl_version": lamp_pl.__version__,
        "task": task.name,
        "task_spec": task.fingerprint,
        "inputs": {s: {"file": p.name, "sha256": sha256(p)} for s, p in sorted(inputs.items())},
        "encoder": encoder,
    }


def write_manifest(folder: Path, key: dict, counts: dict, info: dict, files: dict[str, dict]) -> None:
    """Written last: a folder without it never loads. `files` holds each file's checksum record."""
    (folder / "manifest.json").write_text(
        json.dumps({"key": key, "counts": counts, "info": info, "files": files}, indent=1)
    )


def _shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    return n * rank // world_size, n * (rank + 1) // world_size


class TextRows(Sequence[str]):
    """Rows lo..hi of a texts.jsonl, read on demand: a slice is one read of its byte range (plain
    reads, not a memory map, so the texts pass through the page cache without counting in this
    process's resident memory)."""

    def __init__(self, texts: JsonLines, lo: int = 0, hi: int | None = None) -> None:
        self.texts, self.lo, self.hi = texts, lo, len(texts) if hi is None else hi

    def __len__(self) -> int:
        return self.hi - self.lo

    def __getitem__(self, index):  # type: ignore[override]
        if isinstance(index, slice):
            start, stop, step = index.indices(len(self))
            if step != 1 or stop <= start:
                return [self[i] for i in range(start, stop, step)]
            begin, end = int(self.texts.offsets[self.lo + start]), int(self.texts.offsets[self.lo + stop])
            with open(self.texts.path, "rb") as stream:
                stream.seek(begin)
                lines = stream.read(end - begin).split(b"\n")  # JSON escapes newlines inside strings
            return [json.loads(line) for line in lines[:-1]]
        if not -len(self) <= index < len(self):
            raise IndexError(index)
        return self.texts[self.lo + index % len(self)]


class Encoding:
    """Encodes texts for one build through the shared `EmbeddingStore`: only texts the store lacks
    reach the encoder, which is built on first need (a build whose texts are all stored loads no
    model). `encoded` and `forward_seconds` add up over the calls."""

    def __init__(self, cache_dir: Path, settings: EncoderSettings, progress: bool) -> None:
        self.store, self.settings, self.progress = EmbeddingStore(cache_dir, settings), settings, progress
        self.encoder: Encoder | None = None
        self.encoded = 0

    def _encoder(self) -> Encoder:
        self.encoder = self.encoder or self.settings.build(self.progress)
        return self.encoder

    @property
    def forward_seconds(self) -> float:
        return self.encoder.forward_seconds if self.encoder else 0.0

    def into(self, path: Path, texts: Sequence[str], role: str = "item") -> None:
        """Write the embeddings of `texts` as the .npy `path` (renamed into place when full)."""
        self.encoded += self.store.fill(path, texts, role, self._encoder)

    def queries(self, tables: Path) -> None:
        """When queries take another prefix than items: ``query_embeddings.npy`` holds each
        distinct query text (rows ``query_text_rows.npy``, sorted) encoded as a query."""
        if self.store.recipe.query_prefix == self.store.recipe.item_prefix:
            return
        parts = []
        for split in tables.glob("split-*.npz"):
            with np.load(split) as data:
                parts.append(data["query_rows"])
        rows = np.unique(np.concatenate(parts)) if parts else np.empty(0, dtype=np.int64)
        np.save(tables / "query_text_rows.npy", rows)
        self.into(tables / "query_embeddings.npy", Picked(TextRows(JsonLines(tables / "texts.jsonl")), rows), "query")


def _write_tables(task: Task, inputs: dict[str, Path], folder: Path) -> dict:
    """Stream the questions files into `folder`'s tables; the counts say how many files were parsed."""
    start = time.perf_counter()
    counts, files = write_tables(task, inputs, folder)
    return {
        **counts,
        "_files": files,
        "_ingest": {"parsed_files": len(inputs), "pid": os.getpid(), "seconds": round(time.perf_counter() - start, 3)},
    }


def _finish(folder: Path, tmp: Path, key: dict, counts: dict, inputs: dict[str, Path], info: dict) -> None:
    """Write the manifest (last) into the complete `tmp` folder and move it into place."""
    dim = int(np.load(tmp / "embeddings.npy", mmap_mode="r").shape[1]) if (tmp / "embeddings.npy").exists() else None
    files = counts.pop("_files")
    for name in ("embeddings.npy", "query_text_rows.npy", "query_embeddings.npy"):
        if (tmp / name).exists():  # written out of order through a memory map, so read back once
            files[name] = file_record(tmp / name)
    info = {
        **info,
        "ingest": counts.pop("_ingest"),
        "stat": {s: [p.stat().st_size, p.stat().st_mtime_ns] for s, p in inputs.items()},
    }
    write_manifest(tmp, key, {**counts, "dim": dim}, info, files)
    replace_folder(tmp, folder)


def _build_single(
    task: Task,
    inputs: dict[str, Path],
    key: dict,
    folder: Path,
    settings: EncoderSettings | None,
    progress: bool,
    cache_dir: Path,
) -> tuple[int, float]:
    """One process: tables, then the store, into a temporary sibling of `folder`."""
    tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}.tmp-"))
    encoded, seconds, forward = 0, 0.0, 0.0
    try:
        counts = _write_tables(task, inputs, tmp)
        if settings is not None:
            start, encoding = time.perf_counter(), Encoding(cache_dir, settings, progress)
            encoding.into(tmp / "embeddings.npy", TextRows(JsonLines(tmp / "texts.jsonl")))
            encoding.queries(tmp)
            encoded, seconds, forward = encoding.encoded, time.perf_counter() - start, encoding.forward_seconds
        _finish(
            folder,
            tmp,
            key,
            counts,
            inputs,
            {"encoded_here": encoded, "encode_seconds": seconds, "forward_seconds": forward, "world_size": 1},
        )
    except OSError as error:
        raise no_space(error, tmp) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return encoded, seconds


def _assemble_store(tables: Path, build_dir: Path, encoding: Encoding, world_size: int) -> None:
    """Copy the ranks' shards into ``tables/embeddings.npy`` (chunked: memory bounded by the chunk,
    not the store); a missing shard, from a rank that failed, is encoded here, and so are the
    queries when they take their own prefix."""
    texts = JsonLines(tables / "texts.jsonl")
    shards = []
    for r in range(world_size):
        lo, hi = _shard_bounds(len(texts), r, world_size)
        path = build_dir / f"shard-{r:03d}-of-{world_size:03d}.npy"
        if not path.is_file():
            encoding.into(path, TextRows(texts, lo, hi))
        shards.append((lo, hi, np.load(path, mmap_mode="r")))
    dim = shards[0][2].shape[1]
    store = open_store(tables / "embeddings.npy", (len(texts), dim))
    for lo, hi, shard in shards:
        if shard.shape != (hi - lo, dim):
            raise CacheError(f"shard {shard.filename} has shape {shard.shape}, expected {(hi - lo, dim)}")
        for at in range(0, hi - lo, 1 << 16):
            store[lo + at : lo + min(at + (1 << 16), hi - lo)] = shard[at : at + (1 << 16)]
    store.flush()
    encoding.queries(tables)


def _build_sharded(
    task: Task,
    inputs: dict[str, Path],
    key: dict,
    folder: Path,
    settings: EncoderSettings | None,
    build: bool,
    rank: int,
    world_size: int,
    barrier: Callable[[], None],
    progress: bool,
    cache_dir: Path,
) -> tuple[int, float]:
    """Every rank calls this; it calls `barrier` three times on each, errors or not.

    Rank 0 alone streams the questions into ``<build_dir>/tables`` (one copy per node, on the file
    system the ranks share); then each rank memory-maps ``texts.jsonl`` there and encodes its
    contiguous slice into a shard file; then rank 0 assembles the store, writes the manifest and
    moves the tables folder into place. Whether anything is built is rank 0's decision.
    """
    build_dir = folder.parent / f".{folder.name}.build-{stable_hash(key)}"
    tables = build_dir / "tables"
    seconds, error, counts = 0.0, None, None
    encoding = Encoding(cache_dir, settings, progress) if settings is not None else None
    try:
        if rank == 0 and build:
            build_dir.mkdir(exist_ok=True)
            shutil.rmtree(tables, ignore_errors=True)
            tmp = Path(tempfile.mkdtemp(dir=build_dir, prefix="tables-tmp-"))
            try:
                counts = _write_tables(task, inputs, tmp)
                os.replace(tmp, tables)
            finally:
                shutil.rmtree(tmp, ignore_errors=True)
        elif rank == 0:  # leftovers of an interrupted build must not make the other ranks encode
            shutil.rmtree(build_dir, ignore_errors=True)
    except Exception as failure:  # noqa: BLE001 -- re-raised after the barriers, so no rank hangs
        error = failure
    barrier()
    try:
        if error is None and encoding is not None and tables.is_dir():
            texts = JsonLines(tables / "texts.jsonl")
            lo, hi = _shard_bounds(len(texts), rank, world_size)
            path = build_dir / f"shard-{rank:03d}-of-{world_size:03d}.npy"
            if not path.is_file():  # a shard from an interrupted identical build is complete
                start = time.perf_counter()
                encoding.into(path, TextRows(texts, lo, hi))
                seconds = time.perf_counter() - start
    except Exception as failure:  # noqa: BLE001
        error = failure
    barrier()
    if rank == 0:
        try:
            if build and error is None:
                assert counts is not None  # written by this rank before the first barrier
                if encoding is not None:
                    _assemble_store(tables, build_dir, encoding, world_size)
                _finish(
                    folder,
                    tables,
                    key,
                    counts,
                    inputs,
                    {
                        "encoded_here": encoding.encoded if encoding else 0,
                        "encode_seconds": seconds,
                        "forward_seconds": encoding.forward_seconds if encoding else 0.0,
                        "world_size": world_size,
                    },
                )
            shutil.rmtree(build_dir, ignore_errors=True)
        except Exception as failure:  # noqa: BLE001
            error = failure
    barrier()
    if error is not None:
        raise error
    return encoding.encoded if encoding else 0, seconds


def build_profile_index(
    task: Task,
    data_dir: str | Path,
    splits: Sequence[str],
    cache_dir: str | Path,
    settings: EncoderSettings | None,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    progress: bool = True,
) -> tuple[ProfileIndex, dict]:
    """Open the cache for (task, splits' questions files, encoder), building it when missing or stale.

    The questions files are streamed (`lamp_pl.retrieval.ingest`): memory holds digests and row
    numbers, not the parsed JSON. With ``world_size > 1`` every rank must call this (it calls
    `barrier` three times on each): rank 0 alone parses the questions and writes the tables into a
    build folder named after the manifest hash; every rank then encodes its contiguous slice of the
    distinct texts, read from the memory-mapped ``texts.jsonl``, into a shard file; rank 0
    assembles the store, writes the manifest and moves the folder into place. Peak memory per rank
    does not grow with the world size. A valid cache is a no-op on every rank: no encoder is created.

    Args:
        splits: every split the cache covers (their questions files are hashed into the manifest).
        settings: the encoder; None builds the tables only (for sparse retrievers).

    Returns:
        (the opened index, a summary with ``encoded``, ``encode_seconds``, ``reused`` and ``folder``).
    """
    if world_size > 1 and barrier is None:
        raise ValueError("a sharded build (world_size > 1) needs a barrier callable shared by all ranks")
    inputs = {s: split_files(data_dir, task, s)[0] for s in splits}
    # Hashed once per file state, not once per rank and run (the sidecars live in the cache).
    sha256 = functools.partial(file_sha256_by_state, store=Path(cache_dir) / HASH_STORE)
    key = manifest_key(task, inputs, settings.key() if settings else None, sha256)
    folder = index_folder(cache_dir, task, settings)
    if world_size == 1:  # a valid cache needs no lock (nor any write): a read-only cache works
        index = check_cache(folder, key, log=False)
        if index is not None:
            return index, {"encoded": 0, "encode_seconds": 0.0, "reused": True, "folder": str(folder)}
    folder.parent.mkdir(parents=True, exist_ok=True)
    lock = FileLock(f"{folder}.lock") if rank == 0 else contextlib.nullcontext()
    encoded, seconds = 0, 0.0
    with lock:
        if rank == 0:  # under the lock, temporary folders are leftovers of killed builds
            for stale in [*folder.parent.glob(f".{folder.name}.tmp-*"), *folder.parent.glob(f".{folder.name}.old.*")]:
                shutil.rmtree(stale, ignore_errors=True)
        index = check_cache(folder, key)
        build = index is None
        if world_size == 1:
            if build:
                encoded, seconds = _build_single(task, inputs, key, folder, settings, progress, Path(cache_dir))
        else:
            assert barrier is not None
            encoded, seconds = _build_sharded(
                task, inputs, key, folder, settings, build, rank, world_size, barrier, progress, Path(cache_dir)
            )
        try:
            # Sharded: reopen even when valid here, in case rank 0 judged otherwise and rebuilt.
            # A fresh build is checksummed in full once (it is in the page cache now).
            index = ProfileIndex(folder, full_check=build and rank == 0) if build or world_size > 1 else index
        except CacheError as failure:
            raise CacheError(f"rank {rank}: the build did not produce a usable cache ({failure})") from failure
    return index, {"encoded": encoded, "encode_seconds": seconds, "reused": not build, "folder": str(folder)}


__all__ = [
    "FORMAT",
    "TextRows",
    "build_profile_index",
    "index_folder",
    "manifest_key",
    "replace_folder",
    "write_manifest",
]
