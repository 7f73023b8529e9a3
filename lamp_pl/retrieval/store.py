"""One embedding store per encoder, shared by every task, split protocol and data folder.

An index folder (`lamp_pl.retrieval.build`) holds the embeddings of its own texts; they are
taken from ``<cache_dir>/embeddings/<encoder-slug>-<hash>/``, where the hash covers the encoder's
fingerprint and the encoding settings that shape a vector (pooling, normalisation, length,
precision, lower casing). A vector is keyed by the 16-byte blake2b digest of the exact string the
model reads (prefix included), so e5's ``query: `` and ``passage: `` texts share one store, and a
second task, split protocol or data folder that shares texts with the first encodes only the new
ones.

The store is a set of chunks, each written by one build (or one DDP rank) and never changed:
``<id>.digests.npy`` (V16), ``<id>.vectors.npy`` (float32) and, written last as the commit point,
``<id>.json`` with both files' checksum records. Chunk ids are random, so concurrent writers need
no lock; a chunk without its record, or whose files do not match it, is ignored (logged) and its
texts are encoded again. Two builds encoding the same new text at once both store it: harmless.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from lamp_pl.cache import file_record, no_space, preallocate, stable_hash, verify_files, write_text_atomic

if TYPE_CHECKING:
    from lamp_pl.retrieval.encoder import Encoder, EncoderSettings

logger = logging.getLogger(__name__)
_BLOCK = 1 << 16
"""Texts hashed, and rows copied, per step: memory is bounded by the block, not the store."""


def text_digests(texts: Sequence[str], prefix: str = "") -> np.ndarray:
    """The 16-byte blake2b digest of each ``prefix + text`` (dtype V16)."""
    parts = []
    for lo in range(0, len(texts), _BLOCK):
        block = texts[lo : lo + _BLOCK]
        parts.append(b"".join(hashlib.blake2b((prefix + t).encode(), digest_size=16).digest() for t in block))
    return np.frombuffer(b"".join(parts), dtype="V16")


class Picked(Sequence[str]):
    """The rows `rows` of a text sequence, read on demand (a run of consecutive rows is one slice
    of the base, so a store that holds nothing yet reads the texts file sequentially)."""

    def __init__(self, base: Sequence[str], rows: np.ndarray) -> None:
        self.base, self.rows = base, rows

    def __len__(self) -> int:
        return len(self.rows)

    def __getitem__(self, index):
        if not isinstance(index, slice):
            return self.base[int(self.rows[index])]
        rows = self.rows[index]
        if len(rows) and int(rows[-1]) - int(rows[0]) == len(rows) - 1:
            return list(self.base[int(rows[0]) : int(rows[-1]) + 1])
        return [self.base[int(r)] for r in rows]


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


class EmbeddingStore:
    """The shared store of one encoder and its encoding settings (see the module docstring)."""

    def __init__(self, cache_dir: str | Path, settings: EncoderSettings) -> None:
        from lamp_pl.retrieval.encoder import encoder_slug

        key = {k: v for k, v in settings.key().items() if k not in ("query_prefix", "item_prefix")}
        self.key, self.recipe = key, settings.recipe()
        self.folder = Path(cache_dir) / "embeddings" / f"{encoder_slug(settings.name)}-{stable_hash(key)}"

    def chunks(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        """Each intact chunk's (digests, vectors memmap); damaged or unfinished ones are skipped."""
        for record_path in sorted(self.folder.glob("*.json")):
            try:
                record = json.loads(record_path.read_text())
                problems = verify_files(self.folder, record["files"])
                if not problems:
                    digests = np.load(self.folder / f"{record_path.stem}.digests.npy")
                    vectors = np.load(self.folder / f"{record_path.stem}.vectors.npy", mmap_mode="r")
                    if digests.dtype == np.dtype("V16") and vectors.shape == (len(digests), record["dim"]):
                        yield digests, vectors
                        continue
                    problems = [f"shapes {digests.shape}, {vectors.shape} do not match the record"]
            except (OSError, ValueError, KeyError, TypeError) as error:
                problems = [repr(error)]
            logger.warning("embedding store chunk %s is damaged, ignored: %s", record_path, "; ".join(problems))

    def _add_chunk(self, digests: np.ndarray, texts: Sequence[str], role: str | None, encoder: Encoder) -> None:
        """Encode `texts` and commit them as a new chunk keyed by `digests`."""
        self.folder.mkdir(parents=True, exist_ok=True)
        name = uuid.uuid4().hex
        vectors_path, digests_path = self.folder / f"{name}.vectors.npy", self.folder / f"{name}.digests.npy"
        tmp = self.folder / f".{name}.vectors.npy.tmp"
        try:
            vectors = open_store(tmp, (len(texts), encoder.dim))
            encoder.encode(texts, vectors, desc=f"encoding {len(texts)} new texts", role=role)
            vectors.flush()
            del vectors
            os.replace(tmp, vectors_path)
        finally:
            tmp.unlink(missing_ok=True)
        np.save(digests_path, digests)
        files = {p.name: file_record(p) for p in (vectors_path, digests_path)}
        write_text_atomic(self.folder / f"{name}.json", json.dumps({"dim": encoder.dim, "files": files}))

    def fill(self, path: Path, texts: Sequence[str], role: str | None, encoder: Callable[[], Encoder]) -> int:
        """Write the embeddings of `texts` (with `role`'s prefix) as a new .npy at `path`, renamed
        into place when complete; only texts the store lacks are encoded (and added to it).

        Args:
            encoder: builds the encoder; called only when a text is new.

        Returns:
            How many texts were encoded.
        """
        digests = text_digests(texts, self.recipe.prefix(role))
        # One listing per lookup: another writer's chunk landing meanwhile must not shift numbers.
        chunks = list(self.chunks())
        found, rows = self._lookup(digests, chunks)
        missing = np.flatnonzero(found < 0)
        encoded = 0
        if len(missing):
            # Each new text once, in text order (a run of rows stays one read).
            first = missing[np.sort(np.unique(digests[missing], return_index=True)[1])]
            new = digests[first]
            self._add_chunk(new, Picked(texts, first), role, encoder())
            chunks, encoded = list(self.chunks()), len(new)
            found, rows = self._lookup(digests, chunks)
            if (found < 0).any():
                raise OSError(f"{self.folder}: a chunk written now does not read back")
        dim = chunks[0][1].shape[1] if chunks else encoder().dim
        tmp = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
        try:
            out = open_store(tmp, (len(texts), dim))
            for c, (_, vectors) in enumerate(chunks):
                positions = np.flatnonzero(found == c)
                for lo in range(0, len(positions), _BLOCK):
                    at = positions[lo : lo + _BLOCK]
                    out[at] = vectors[rows[at]]
            out.flush()
            del out
            os.replace(tmp, path)
        finally:
            tmp.unlink(missing_ok=True)
        return encoded

    @staticmethod
    def _lookup(digests: np.ndarray, chunks: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
        """(chunk number, row in it) of each digest; chunk -1 where the store lacks it."""
        found = np.full(len(digests), -1, dtype=np.int64)
        rows = np.zeros(len(digests), dtype=np.int64)
        for c, (known, _) in enumerate(chunks):
            order = np.argsort(known, kind="stable")
            ranked = known[order]
            at = np.searchsorted(ranked, digests).clip(max=max(len(ranked) - 1, 0))
            hit = (found < 0) & (ranked[at] == digests) if len(ranked) else np.zeros(len(digests), dtype=bool)
            found[hit], rows[hit] = c, order[at[hit]]
        return found, rows


__all__ = ["EmbeddingStore", "Picked", "open_store", "text_digests"]
