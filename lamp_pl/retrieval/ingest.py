"""Streaming the questions files of a task into the tables of a `ProfileIndex` folder.

Questions are read one at a time (`lamp_pl.data.stream`), and what they contribute goes straight
to disk: each new distinct item as a line of ``items.jsonl``, each new distinct text as a line of
``texts.jsonl``. What stays in memory is what the tables index by: a 16-byte blake2b digest per
distinct item and per distinct text (not the item or the text), one int64 per profile entry (the
split's CSR, saved as ``split-<name>.npz`` when the split ends) and one id per question and user.
At about 100 bytes per distinct item plus 16 bytes per entry, a 3.7 million entry split needs
a few hundred MB where the parsed JSON needed over 20 GB.

The folder written is the layout `ProfileIndex` reads (see `lamp_pl.retrieval.index`); the
caller writes into a temporary folder, so a malformed record half way leaves nothing behind.
"""

from __future__ import annotations

import hashlib
import json
from array import array
from collections.abc import Mapping
from pathlib import Path

import numpy as np

from lamp_pl.cache import ChecksumWriter, write_checksummed
from lamp_pl.data.stream import stream_questions
from lamp_pl.tasks import Task

_FLUSH_LINES = 4096
_ENCODE = json.JSONEncoder(ensure_ascii=False, sort_keys=True).encode  # built once: json.dumps(**kw) is not


def digest(data: bytes) -> bytes:
    """16-byte key of a text or canonical item: collisions are ~1e-26 likely at 4 million keys."""
    return hashlib.blake2b(data, digest_size=16).digest()


class JsonLinesWriter:
    """Appends JSON lines to a file and keeps their byte offsets, saved beside it (as
    `lamp_pl.retrieval.index.JsonLines` reads them) by `close`."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.file = open(path, "wb")  # noqa: SIM115 -- closed by close()
        self.stream = ChecksumWriter(self.file)  # the manifest's checksum, computed while writing
        self.offsets = array("q", [0])
        self.pending: list[bytes] = []  # lines not yet written: one write per _FLUSH_LINES, not per line

    def add(self, value: object) -> int:
        """Append `value`; returns its row."""
        return self.add_encoded(_ENCODE(value).encode())

    def add_encoded(self, line: bytes) -> int:
        """Append one already-encoded JSON value (no newline); returns its row."""
        self.pending.append(line)
        if len(self.pending) >= _FLUSH_LINES:
            self.flush()
        self.offsets.append(self.offsets[-1] + len(line) + 1)
        return len(self.offsets) - 2

    def flush(self) -> None:
        """Write the pending lines (one call: one digest update, one file write)."""
        if self.pending:
            self.pending.append(b"")
            self.stream.write(b"\n".join(self.pending))
            self.pending = []

    def __len__(self) -> int:
        return len(self.offsets) - 1

    def close(self) -> dict[str, dict]:
        """Close the file and save the offsets; returns both files' checksum records by name."""
        self.flush()
        self.file.close()
        offsets = self.path.with_suffix(".offsets.npy")
        return {
            self.path.name: self.stream.record(),
            offsets.name: write_checksummed(
                offsets, lambda out: np.save(out, np.frombuffer(self.offsets, dtype=np.int64))
            ),
        }


class DigestTable:
    """Distinct JSON values of a JsonLinesWriter, looked up by the digest of their canonical line
    (sorted keys): each is written once, and memory holds 16 bytes per value, not the value."""

    def __init__(self, writer: JsonLinesWriter) -> None:
        self.writer = writer
        self.rows: dict[bytes, int] = {}

    def row(self, value: object) -> tuple[int, bool]:
        """(row of `value`, whether it was new and has just been written)."""
        line = _ENCODE(value).encode()
        code = digest(line)
        row = self.rows.get(code)
        if row is not None:
            return row, False
        row = self.rows[code] = self.writer.add_encoded(line)
        return row, True


_STR_ONLY = {str}


def flat_key(item: dict) -> tuple | None:
    """A hashable stand-in for an item whose values are all strings (LaMP's are), else None.

    Two such items are equal exactly when their keys are (numbers are left out: 1 == 1.0 == True in
    a tuple but not in the item's JSON line).
    """
    return tuple(item.items()) if set(map(type, item.values())) == _STR_ONLY else None


def _save(folder: Path, name: str, save) -> dict[str, dict]:
    """Write `folder/name` through `save(stream)`; its checksum record by name."""
    return {name: write_checksummed(folder / name, save)}


def write_tables(task: Task, inputs: Mapping[str, Path], folder: Path) -> tuple[dict, dict[str, dict]]:
    """Stream every split's questions file into the index tables under `folder`.

    Args:
        inputs: split name -> questions file, in the order their rows are numbered.

    Returns:
        The manifest counts (without ``dim``): items, distinct_item_texts, texts, users, questions;
        and the checksum record of every file written, by name (computed while writing).

    Raises:
        LaMPDataError: a malformed record (file, record, field); `folder` is then partly written.
    """
    item_lines, text_lines = JsonLinesWriter(folder / "items.jsonl"), JsonLinesWriter(folder / "texts.jsonl")
    items, texts = DigestTable(item_lines), DigestTable(text_lines)
    item_text = array("q")
    users: dict[str, int] = {}
    owners, members, questions = [], [], {}  # (user, item) pairs per split, for the users' CSR
    files: dict[str, dict] = {}
    # A time-based user's questions repeat most of their profile: an item already seen among the
    # same user's is found by its fields, without encoding and hashing its JSON line again (that
    # was most of this function's time on 200-400-item profiles).
    recent: dict[tuple, int] = {}
    last_user = -1
    try:
        for split, path in inputs.items():
            ids, owner, query_rows, offsets, rows = [], array("q"), array("q"), array("q", [0]), array("q")
            for question in stream_questions(path, task):
                user = users.setdefault(question.user, len(users))
                if user != last_user:
                    recent.clear()  # memory: one user's items at a time
                    last_user = user
                for item in question.profile:
                    key = flat_key(item)
                    row = recent.get(key) if key is not None else None
                    if row is None:
                        row, new = items.row(item)
                        if new:  # its text row, in first-occurrence order
                            item_text.append(texts.row(task.item_text(item))[0])
                        if key is not None:
                            recent[key] = row
                    rows.append(row)
                offsets.append(len(rows))
                owner.append(user)
                query_rows.append(texts.row(task.query(question.input) or "")[0])
                ids.append(question.id)
            arrays = {
                name: np.frombuffer(values, dtype=np.int64) if len(values) else np.empty(0, np.int64)
                for name, values in (
                    ("users", owner),
                    ("query_rows", query_rows),
                    ("offsets", offsets),
                    ("items", rows),
                )
            }
            tables = {"question_ids": np.array(ids, dtype=str), **arrays}
            files |= _save(folder, f"split-{split}.npz", lambda out, tables=tables: np.savez(out, **tables))
            owners.append(np.repeat(arrays["users"], np.diff(arrays["offsets"])))
            members.append(arrays["items"])
            questions[split] = len(ids)
            del ids
    finally:
        files |= item_lines.close()
        files |= text_lines.close()
    user_lines = JsonLinesWriter(folder / "users.jsonl")
    for name in users:
        user_lines.add(name)
    files |= user_lines.close()
    item_rows = np.frombuffer(item_text, dtype=np.int64) if len(item_text) else np.empty(0, np.int64)
    files |= _save(folder, "item_text.npy", lambda out: np.save(out, item_rows))
    files |= _write_user_items(folder, len(users), len(item_lines), owners, members)
    counts = {
        "items": len(item_lines),
        "distinct_item_texts": len(np.unique(item_rows)),
        "texts": len(text_lines),
        "users": len(users),
        "questions": questions,
    }
    return counts, files


def _write_user_items(
    folder: Path, n_users: int, n_items: int, owners: list[np.ndarray], members: list[np.ndarray]
) -> dict[str, dict]:
    """Each user's items (union over their questions and splits, sorted) as CSR, by one sort of
    user * n_items + item keys instead of a Python set per user."""
    keys = np.unique(
        np.concatenate(
            [np.empty(0, np.int64), *(o * max(n_items, 1) + m for o, m in zip(owners, members, strict=True))]
        )
    )
    user_of = keys // max(n_items, 1)
    counts = np.bincount(user_of, minlength=n_users) if n_users else np.empty(0, np.int64)
    offsets = np.concatenate([[0], np.cumsum(counts)]).astype(np.int64)
    return {
        **_save(folder, "user_items.npy", lambda out: np.save(out, keys % max(n_items, 1))),
        **_save(folder, "user_offsets.npy", lambda out: np.save(out, offsets)),
    }


__all__ = ["DigestTable", "JsonLinesWriter", "digest", "write_tables"]
