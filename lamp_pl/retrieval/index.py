"""ProfileIndex: one memory-mapped embedding store per task and encoder, per-user FAISS search.

Layout of `<cache_dir>/<task>/<encoder-slug>/` (built in a temporary sibling and moved into place
with `os.replace` once complete; guarded by `<folder>.lock`):

* ``manifest.json`` -- `key` (what the cache was built from), `counts`, and build `info`;
* ``items.jsonl`` -- every distinct profile item (deduplicated by content) of every split;
* ``texts.jsonl`` -- every distinct text to encode: item retrieval texts and queries, once each;
* ``item_text.npy`` -- each item's text row; ``users.jsonl`` + ``user_offsets/user_items.npy`` --
  each user's items (union over their questions and splits, sorted) as CSR;
* ``split-<name>.npz`` -- question ids, user and query row of each question, profile as CSR;
* ``embeddings.npy`` -- float32 (texts, dim); only when a dense retriever needs it.

A user's FAISS index is not stored: it is an `IndexFlatIP` over that user's rows of the memmap,
built on demand (a copy of a few hundred rows); each question's search is restricted to its own
profile with an `IDSelectorBatch`, so a time-based user's questions share one index.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import json
import logging
import mmap
import os
import shutil
import tempfile
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock

import lamp_pl
from lamp_pl.data.lamp import LaMPQuestion, load_split, split_files
from lamp_pl.retrieval.encoder import Encoder, EncoderSettings, encoder_slug
from lamp_pl.tasks import Task

logger = logging.getLogger(__name__)
FORMAT = 1


class CacheError(RuntimeError):
    """A cache folder is missing, stale or unreadable; the message says which and why."""


def stable_hash(value: object, length: int = 16) -> str:
    """Hex digest of a JSON-able value, independent of dict order and of the Python process."""
    return hashlib.sha256(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()[:length]


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as stream:
        for block in iter(lambda: stream.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


class JsonLines:
    """Read-only random access to a JSON-lines file through a byte-offset array (mmap, lazily
    opened, picklable so DataLoader workers can hold one)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.offsets = np.load(self.path.with_suffix(".offsets.npy"), mmap_mode="r")
        size = self.path.stat().st_size
        if self.offsets.ndim != 1 or len(self.offsets) < 1 or int(self.offsets[-1]) != size:
            raise CacheError(f"{self.path}: offsets do not match the file ({size} bytes)")
        self._map: mmap.mmap | None = None

    @staticmethod
    def write(path: str | Path, values: Sequence[object] | Sequence[str], encoded: bool = False) -> None:
        """Write `values` (or already-encoded JSON strings) and their offsets beside them."""
        offsets = np.zeros(len(values) + 1, dtype=np.int64)
        with open(path, "wb") as stream:
            for i, value in enumerate(values):
                line = (value if encoded else json.dumps(value, ensure_ascii=False)).encode() + b"\n"
                stream.write(line)
                offsets[i + 1] = offsets[i] + len(line)
        np.save(Path(path).with_suffix(".offsets.npy"), offsets)

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> object:
        if self._map is None:
            with open(self.path, "rb") as stream:
                self._map = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) if len(self) else b""
        return json.loads(self._map[int(self.offsets[index]):int(self.offsets[index + 1])])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_map": None}


def replace_folder(tmp: Path, dest: Path) -> None:
    """Move a completed `tmp` folder to `dest`, replacing an old `dest`."""
    if dest.exists():
        trash = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}.old."))
        os.replace(dest, trash / "old")
        shutil.rmtree(trash, ignore_errors=True)
    os.replace(tmp, dest)


def read_manifest(folder: Path) -> dict:
    try:
        manifest = json.loads((folder / "manifest.json").read_text())
        manifest["key"], manifest["counts"]  # noqa: B018 -- both sections must exist
        return manifest
    except FileNotFoundError:
        raise CacheError(f"{folder}: no manifest.json (not built, or a build did not finish)") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise CacheError(f"{folder}/manifest.json is unreadable ({error!r})") from None


@dataclass
class SplitTables:
    """One split's questions as the index sees them."""

    question_ids: np.ndarray
    users: np.ndarray
    """User row of each question."""
    query_rows: np.ndarray
    """Text row of each question's query."""
    offsets: np.ndarray
    items: np.ndarray
    """Question q's profile is items[offsets[q]:offsets[q+1]] (item rows, profile order)."""

    def profile(self, q: int) -> np.ndarray:
        return self.items[self.offsets[q]:self.offsets[q + 1]]


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

    def write(self, folder: Path) -> None:
        for split, arrays in self.splits.items():
            np.savez(folder / f"split-{split}.npz", **arrays)
        JsonLines.write(folder / "items.jsonl", self.item_lines, encoded=True)
        JsonLines.write(folder / "texts.jsonl", self.texts)
        JsonLines.write(folder / "users.jsonl", self.users)
        np.save(folder / "item_text.npy", np.array(self.item_text, dtype=np.int64))
        np.save(folder / "user_offsets.npy", np.cumsum([0] + [len(s) for s in self.user_items], dtype=np.int64))
        np.save(folder / "user_items.npy", np.array([r for s in self.user_items for r in s], dtype=np.int64))


class ProfileIndex:
    """A built cache folder, opened read-only (memmaps); `search` needs the dense store.

    Raises:
        CacheError: the folder is missing, incomplete, or its arrays do not fit its manifest.
    """

    def __init__(self, folder: str | Path, user_cache: int = 32) -> None:
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        counts = self.manifest["counts"]
        try:
            self.items = JsonLines(self.folder / "items.jsonl")
            self.texts = JsonLines(self.folder / "texts.jsonl")
            self.users = JsonLines(self.folder / "users.jsonl")
            self.item_text = np.load(self.folder / "item_text.npy", mmap_mode="r")
            self.user_offsets = np.load(self.folder / "user_offsets.npy", mmap_mode="r")
            self.user_items = np.load(self.folder / "user_items.npy", mmap_mode="r")
            self.splits = {s: self._load_split(s, n) for s, n in counts["questions"].items()}
            self.embeddings = (np.load(self.folder / "embeddings.npy", mmap_mode="r")
                               if self.manifest["key"].get("encoder") else None)
        except CacheError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise CacheError(f"{self.folder}: unreadable array ({error!r})") from None
        expected = {"items": (len(self.items), counts["items"]), "texts": (len(self.texts), counts["texts"]),
                    "users": (len(self.users), counts["users"]),
                    "item_text": (self.item_text.shape, (counts["items"],)),
                    "user_offsets": (int(self.user_offsets[-1]) if len(self.user_offsets) else -1,
                                     len(self.user_items))}
        if self.embeddings is not None:
            expected["embeddings"] = (self.embeddings.shape, (counts["texts"], counts["dim"]))
        wrong = [f"{name}: {got} != {want}" for name, (got, want) in expected.items() if got != want]
        if wrong:
            raise CacheError(f"{self.folder}: arrays do not match the manifest ({'; '.join(wrong)})")
        self._faiss: OrderedDict[int, object] = OrderedDict()
        self._user_cache = user_cache

    def _load_split(self, split: str, n: int) -> SplitTables:
        with np.load(self.folder / f"split-{split}.npz") as data:
            tables = SplitTables(**{name: data[name] for name in SplitTables.__dataclass_fields__})
        if not (len(tables.question_ids) == len(tables.users) == len(tables.query_rows) == n
                and len(tables.offsets) == n + 1 and int(tables.offsets[-1]) == len(tables.items)):
            raise CacheError(f"{self.folder}/split-{split}.npz does not match the manifest ({n} questions)")
        return tables

    @property
    def hash(self) -> str:
        """Digest of the manifest key: what the whole cache was built from."""
        return stable_hash(self.manifest["key"])

    def item(self, row: int) -> dict:
        return self.items[row]  # type: ignore[return-value]

    def item_text_of(self, row: int) -> str:
        return self.texts[int(self.item_text[row])]  # type: ignore[return-value]

    def members(self, user: int) -> np.ndarray:
        """The item rows of `user`, sorted."""
        return np.asarray(self.user_items[self.user_offsets[user]:self.user_offsets[user + 1]])

    def _user_index(self, user: int):
        import faiss

        if user in self._faiss:
            self._faiss.move_to_end(user)
            return self._faiss[user]
        vectors = np.ascontiguousarray(self.embeddings[self.item_text[self.members(user)]], dtype=np.float32)
        index = faiss.IndexFlatIP(vectors.shape[1])
        index.add(vectors)
        self._faiss[user] = index
        if len(self._faiss) > self._user_cache:
            self._faiss.popitem(last=False)
        return index

    def search(self, query_row: int, user: int, candidates: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """Top-`k` of `candidates` (item rows of `user`) by inner product with text row `query_row`.

        Returns:
            (item rows, scores), best first; at most min(k, len(candidates)).
        """
        import faiss

        if self.embeddings is None:
            raise CacheError(f"{self.folder} was built without embeddings; rebuild it for a dense retriever")
        k = min(k, len(candidates))
        if k <= 0:
            return np.empty(0, dtype=np.int64), np.empty(0, dtype=np.float32)
        members, index = self.members(user), self._user_index(user)
        params = None
        if len(candidates) < len(members):
            positions = np.searchsorted(members, candidates).astype(np.int64)
            params = faiss.SearchParameters(sel=faiss.IDSelectorBatch(positions))
        query = np.ascontiguousarray(self.embeddings[query_row][None], dtype=np.float32)
        scores, found = index.search(query, k, params=params)
        keep = found[0] >= 0
        return members[found[0][keep]], scores[0][keep]


def manifest_key(task: Task, inputs: dict[str, Path], encoder: dict | None) -> dict:
    """What a cache is built from; any difference means a rebuild."""
    return {"format": FORMAT, "lamp_pl_version": lamp_pl.__version__, "task": task.name,
            "inputs": {s: {"file": p.name, "sha256": file_sha256(p)} for s, p in sorted(inputs.items())},
            "encoder": encoder}


def check_cache(folder: Path, key: dict) -> ProfileIndex | None:
    """Open `folder` if it was built from `key`; log why not and return None otherwise."""
    if not folder.exists():
        return None
    try:
        index = ProfileIndex(folder)
    except CacheError as error:
        logger.warning("retrieval cache is corrupted or incomplete, rebuilding it: %s", error)
        return None
    if index.manifest["key"] != key:
        old = index.manifest["key"]
        changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        logger.info("retrieval cache %s is stale (changed: %s); rebuilding it", folder, ", ".join(changed))
        return None
    return index


def write_manifest(folder: Path, key: dict, counts: dict, info: dict) -> None:
    """Written last: a folder without it never loads."""
    (folder / "manifest.json").write_text(json.dumps({"key": key, "counts": counts, "info": info}, indent=1))


def _shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    return n * rank // world_size, n * (rank + 1) // world_size


def _encode_into(path: Path, texts: Sequence[str], encoder: Encoder) -> None:
    """Stream encodings of `texts` into a new .npy memmap at `path`, renamed into place when full,
    so a half-written file never has the final name."""
    tmp = path.with_name(f".{path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
    store = np.lib.format.open_memmap(tmp, mode="w+", dtype=np.float32, shape=(len(texts), encoder.dim))
    try:
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
        tables.write(tmp)
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
                store = np.lib.format.open_memmap(tmp / "embeddings.npy", mode="w+", dtype=np.float32,
                                                  shape=(len(tables.texts), dim))
                for lo, hi, shard in shards:
                    if shard.shape != (hi - lo, dim):
                        raise CacheError(f"shard {shard.filename} has shape {shard.shape}, expected {(hi - lo, dim)}")
                    for at in range(0, hi - lo, 1 << 16):  # chunked: memory bounded by the chunk, not the store
                        store[lo + at:lo + min(at + (1 << 16), hi - lo)] = shard[at:at + (1 << 16)]
                store.flush()
                del store, shards
            seconds = time.perf_counter() - start
            dim = np.load(tmp / "embeddings.npy", mmap_mode="r").shape[1]
        info = {"encoded_here": encoded, "encode_seconds": seconds, "world_size": world_size,
                "stat": {s: [p.stat().st_size, p.stat().st_mtime_ns] for s, p in inputs.items()}}
        write_manifest(tmp, key, tables.counts(dim), info)
        replace_folder(tmp, folder)
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
            index = ProfileIndex(folder) if build or world_size > 1 else index
        except CacheError as failure:
            raise CacheError(f"rank {rank}: the build did not produce a usable cache ({failure})") from failure
    return index, {"encoded": encoded, "encode_seconds": seconds, "reused": not build, "folder": str(folder)}


__all__ = ["CacheError", "JsonLines", "ProfileIndex", "SplitTables", "Tables", "build_profile_index", "check_cache",
           "file_sha256", "manifest_key", "read_manifest", "replace_folder", "stable_hash"]
