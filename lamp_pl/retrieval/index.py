"""ProfileIndex: one memory-mapped embedding store per task and encoder, per-user FAISS search.

Layout of `<cache_dir>/<task>/<encoder-slug>/` (built by `lamp_pl.retrieval.build` in a temporary
sibling and moved into place with `os.replace` once complete; guarded by `<folder>.lock`):

* ``manifest.json`` -- `key` (what the cache was built from), `counts`, and build `info`;
* ``items.jsonl`` -- every distinct profile item (deduplicated by content; keys sorted) of every split;
* ``texts.jsonl`` -- every distinct text to encode: item retrieval texts and queries, once each;
* ``item_text.npy`` -- each item's text row; ``users.jsonl`` + ``user_offsets/user_items.npy`` --
  each user's items (union over their questions and splits, sorted) as CSR;
* ``split-<name>.npz`` -- question ids, user and query row of each question, profile as CSR;
* ``embeddings.npy`` -- float32 (texts, dim); only when a dense retriever needs it; copied from
  the shared `lamp_pl.retrieval.store.EmbeddingStore`, texts encoded as items (their prefix);
* ``query_embeddings.npy`` + ``query_text_rows.npy`` -- only when queries take another prefix
  than items (e5's ``query: ``): each distinct query text, encoded as a query, and its text row.

A user's FAISS index is not stored: it is an `IndexFlatIP` over that user's rows of the memmap,
built on demand (a copy of a few hundred rows); each question's search is restricted to its own
profile with an `IDSelectorBatch`, so a time-based user's questions share one index.
"""

from __future__ import annotations

import json
import logging
import mmap
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from lamp_pl.cache import CacheError, stable_hash, verify_files, write_checksummed

logger = logging.getLogger(__name__)


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
    def write(path: str | Path, values: Sequence[object] | Sequence[str], encoded: bool = False) -> dict[str, dict]:
        """Write `values` (or already-encoded JSON strings) and their offsets beside them.

        Returns:
            The checksum record of each of the two files, by file name.
        """
        path = Path(path)
        offsets = np.zeros(len(values) + 1, dtype=np.int64)

        def lines(stream) -> None:
            for i, value in enumerate(values):
                line = (value if encoded else json.dumps(value, ensure_ascii=False)).encode() + b"\n"
                stream.write(line)
                offsets[i + 1] = offsets[i] + len(line)

        offsets_path = path.with_suffix(".offsets.npy")
        return {
            path.name: write_checksummed(path, lines),
            offsets_path.name: write_checksummed(offsets_path, lambda stream: np.save(stream, offsets)),
        }

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def __getitem__(self, index: int) -> object:
        if self._map is None:
            with open(self.path, "rb") as stream:
                self._map = mmap.mmap(stream.fileno(), 0, access=mmap.ACCESS_READ) if len(self) else b""
        return json.loads(self._map[int(self.offsets[index]) : int(self.offsets[index + 1])])

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_map": None}


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
        return self.items[self.offsets[q] : self.offsets[q + 1]]


class ProfileIndex:
    """A built cache folder, opened read-only (memmaps); `search` needs the dense store.

    Raises:
        CacheError: the folder is missing, incomplete, or its arrays do not fit its manifest.
    """

    def __init__(self, folder: str | Path, user_cache: int = 32, full_check: bool = False) -> None:
        """
        Args:
            full_check: checksum every file (at build end, `lamp-pl index --verify`); by default
                sizes are checked always and checksums of small files only.
        """
        self.folder = Path(folder)
        self.manifest = read_manifest(self.folder)
        counts = self.manifest["counts"]
        if not isinstance(self.manifest.get("files"), dict):
            raise CacheError(f"{self.folder}/manifest.json records no checksums (built by an older lamp_pl)")
        problems = verify_files(self.folder, self.manifest["files"], full=full_check)
        if problems:
            raise CacheError(f"{self.folder}: damaged cache files ({'; '.join(problems)})")
        try:
            self.items = JsonLines(self.folder / "items.jsonl")
            self.texts = JsonLines(self.folder / "texts.jsonl")
            self.users = JsonLines(self.folder / "users.jsonl")
            self.item_text = np.load(self.folder / "item_text.npy", mmap_mode="r")
            self.user_offsets = np.load(self.folder / "user_offsets.npy", mmap_mode="r")
            self.user_items = np.load(self.folder / "user_items.npy", mmap_mode="r")
            self.splits = {s: self._load_split(s, n) for s, n in counts["questions"].items()}
            self.embeddings = (
                np.load(self.folder / "embeddings.npy", mmap_mode="r") if self.manifest["key"].get("encoder") else None
            )
            separate = "query_embeddings.npy" in self.manifest["files"]
            self.query_text_rows = np.load(self.folder / "query_text_rows.npy") if separate else None
            self.query_embeddings = np.load(self.folder / "query_embeddings.npy", mmap_mode="r") if separate else None
        except CacheError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise CacheError(f"{self.folder}: unreadable array ({error!r})") from None
        expected = {
            "items": (len(self.items), counts["items"]),
            "texts": (len(self.texts), counts["texts"]),
            "users": (len(self.users), counts["users"]),
            "item_text": (self.item_text.shape, (counts["items"],)),
            "user_offsets": (int(self.user_offsets[-1]) if len(self.user_offsets) else -1, len(self.user_items)),
        }
        if self.embeddings is not None:
            expected["embeddings"] = (self.embeddings.shape, (counts["texts"], counts["dim"]))
        if self.query_embeddings is not None and self.query_text_rows is not None:
            expected["query_embeddings"] = (self.query_embeddings.shape, (len(self.query_text_rows), counts["dim"]))
        wrong = [f"{name}: {got} != {want}" for name, (got, want) in expected.items() if got != want]
        if wrong:
            raise CacheError(f"{self.folder}: arrays do not match the manifest ({'; '.join(wrong)})")
        self._faiss: OrderedDict[int, object] = OrderedDict()
        self._user_cache = user_cache

    def _load_split(self, split: str, n: int) -> SplitTables:
        with np.load(self.folder / f"split-{split}.npz") as data:
            tables = SplitTables(**{name: data[name] for name in SplitTables.__dataclass_fields__})
        if not (
            len(tables.question_ids) == len(tables.users) == len(tables.query_rows) == n
            and len(tables.offsets) == n + 1
            and int(tables.offsets[-1]) == len(tables.items)
        ):
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
        return np.asarray(self.user_items[self.user_offsets[user] : self.user_offsets[user + 1]])

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

    def query_vector(self, query_row: int) -> np.ndarray:
        """The embedding of text row `query_row` encoded as a query (its own prefix, if any)."""
        if self.query_embeddings is None or self.query_text_rows is None:
            return np.asarray(self.embeddings[query_row])  # type: ignore[index]
        at = int(np.searchsorted(self.query_text_rows, query_row))
        if at >= len(self.query_text_rows) or int(self.query_text_rows[at]) != query_row:
            raise CacheError(f"{self.folder}: text row {query_row} was not encoded as a query")
        return np.asarray(self.query_embeddings[at])

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
        query = np.ascontiguousarray(self.query_vector(query_row)[None], dtype=np.float32)
        scores, found = index.search(query, k, params=params)
        keep = found[0] >= 0
        return members[found[0][keep]], scores[0][keep]


def check_cache(folder: Path, key: dict, full_check: bool = False, log: bool = True) -> ProfileIndex | None:
    """Open `folder` if it was built from `key` and is intact; log why not and return None otherwise."""
    if not folder.exists():
        return None
    try:
        index = ProfileIndex(folder, full_check=full_check)
    except CacheError as error:
        if log:
            logger.warning("retrieval cache is corrupted or incomplete, rebuilding it: %s", error)
        return None
    if index.manifest["key"] != key:
        old = index.manifest["key"]
        changed = sorted(k for k in set(old) | set(key) if old.get(k) != key.get(k))
        if log:
            logger.info("retrieval cache %s is stale (changed: %s); rebuilding it", folder, ", ".join(changed))
        return None
    return index


__all__ = ["CacheError", "JsonLines", "ProfileIndex", "SplitTables", "check_cache", "read_manifest"]
