"""Bounded memory at scale: streamed ingestion, one parse per node under DDP, token-bounded windows."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from lamp_pl.cache import HASH_STORE
from lamp_pl.data import stream
from lamp_pl.data.lamp import LaMPDataError, load_split
from lamp_pl.retrieval import Encoder, ProfileIndex
from lamp_pl.retrieval.build import build_profile_index
from lamp_pl.retrieval.encoder import EncoderSettings
from lamp_pl.tasks import get_task

TASK = "LaMP_4"
SPLITS = ["dev", "test", "train"]


@pytest.fixture
def data(data_root, tmp_path) -> Path:
    shutil.copytree(data_root / TASK, tmp_path / "data" / TASK)
    return tmp_path / "data"


@pytest.mark.parametrize("style", ["one-line", "indented", "json-lines"])
def test_streamed_records_equal_the_parsed_document(data, style, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 97)  # records straddle many chunk boundaries
    path = data / TASK / "train_questions.json"
    records = json.loads(path.read_text())
    path.write_text(
        "\n".join(json.dumps(r) for r in records)
        if style == "json-lines"
        else json.dumps(records, indent=1 if style == "indented" else None)
    )
    assert list(stream.iter_records(path)) == records
    assert [q.id for q in stream.stream_questions(path, TASK)] == [str(r["id"]) for r in records]


def test_streamed_tables_hold_every_questions_profile(data, tmp_path):
    index, _ = build_profile_index(get_task(TASK), data, SPLITS, tmp_path / "cache", None, progress=False)
    task = get_task(TASK)
    for split in SPLITS:
        tables = index.splits[split]
        for q, question in enumerate(load_split(data, TASK, split)):
            assert tables.question_ids[q] == question.id
            assert [index.item(int(r)) for r in tables.profile(q)] == question.profile
            assert index.texts[int(tables.query_rows[q])] == task.query(question.input)
            assert index.users[int(tables.users[q])] == question.user
            assert set(index.members(int(tables.users[q])).tolist()) >= set(tables.profile(q).tolist())
    assert index.manifest["info"]["ingest"]["parsed_files"] == len(SPLITS)


def test_a_malformed_record_mid_file_names_it_and_writes_nothing(data, tmp_path, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 256)
    path = data / TASK / "train_questions.json"
    records = json.loads(path.read_text())
    middle = len(records) // 2
    del records[middle]["profile"][1]["title"]
    path.write_text(json.dumps(records, indent=1))
    with pytest.raises(LaMPDataError) as error:
        build_profile_index(get_task(TASK), data, SPLITS, tmp_path / "cache", None, progress=False)
    message = str(error.value)
    assert str(path) in message and f"record {middle}" in message and "profile[1].title" in message
    # The data-file hash memo (`HASH_STORE`) describes the input files, not a cache of them.
    leftovers = [
        p
        for p in (tmp_path / "cache").rglob("*")
        if not p.name.endswith(".lock") and HASH_STORE not in p.relative_to(tmp_path / "cache").parts
    ]
    assert leftovers == [tmp_path / "cache" / TASK], leftovers  # no folder, no temporary, no manifest


def test_malformed_json_mid_file_is_reported_with_its_line(data, monkeypatch):
    monkeypatch.setattr(stream, "CHUNK", 64)
    path = data / TASK / "train_questions.json"
    text = json.dumps(json.loads(path.read_text()), indent=1)
    at = text.index('"id"', len(text) // 2)
    path.write_text(text[:at] + text[at + 1 :])
    line = text[:at].count("\n") + 1
    with pytest.raises(LaMPDataError, match=rf"train_questions.json: malformed JSON: .* line {line} column"):
        list(stream.stream_questions(path, TASK))


def test_the_encoders_window_holds_no_more_than_its_token_budget(tiny_bert):
    texts = [" ".join(["word"] * (3 + i % 40)) for i in range(1000)]
    wide = Encoder(tiny_bert, progress=False, batch_size=8).encode(texts)
    encoder = Encoder(tiny_bert, progress=False, batch_size=8, window_tokens=2000)
    assert encoder.window_tokens == 2000  # at least one batch of max_length (8 x 128) texts
    windows = list(encoder.windows(texts))
    assert len(windows) > 5 and all(tokens.dtype == np.int32 for _, tokens, _ in windows)
    assert max(len(tokens) for _, tokens, _ in windows) <= encoder.window_tokens
    assert encoder.peak_window_tokens <= encoder.window_tokens
    assert [first for first, _, _ in windows] == list(np.cumsum([0] + [len(n) for _, _, n in windows])[:-1])
    np.testing.assert_allclose(encoder.encode(texts), wide, rtol=1e-5, atol=1e-6)


def _rank(rank: int, paths: tuple[str, str, str]) -> dict:
    """One rank's share of the index build, on the shared gloo group (tests/gloo_helpers.py)."""
    import torch.distributed as dist

    data, cache, encoder = paths
    before = stream.parse_count  # the rank's process is shared: count this build's parses only
    _, summary = build_profile_index(
        get_task(TASK),
        data,
        SPLITS,
        cache,
        EncoderSettings(encoder, device="cpu"),
        rank=rank,
        world_size=2,
        barrier=dist.barrier,
        progress=False,
    )
    return {"parsed": stream.parse_count - before, **summary}


def test_under_two_gloo_ranks_only_one_process_parses_the_questions(data, tiny_bert, tmp_path, gloo_ranks):
    paths = (str(data), str(tmp_path / "cache"), str(tiny_bert))
    ranks = gloo_ranks.run(_rank, [paths, paths])
    assert [r["parsed"] for r in ranks] == [len(SPLITS), 0]
    assert all(r["encoded"] > 0 for r in ranks)  # each rank encoded its slice
    index = ProfileIndex(ranks[0]["folder"])
    assert index.manifest["info"]["ingest"]["parsed_files"] == len(SPLITS)
    assert sum(r["encoded"] for r in ranks) == index.manifest["counts"]["texts"]
    assert np.isfinite(index.embeddings).all() and np.abs(index.embeddings).sum(axis=1).min() > 0  # every row written


def test_a_file_read_whole_is_checked_once_until_it_changes(data, monkeypatch):
    """`index` streams a split up to three times: the profile items' checks run on the first pass
    only, and again whenever the file changed (or an earlier pass stopped before its end)."""
    from lamp_pl.data import lamp

    checked = []
    monkeypatch.setattr(lamp, "_check_profile", lambda *args: checked.append(args[2]))
    monkeypatch.setattr(stream, "_checked_files", set())
    path = data / TASK / "dev_questions.json"
    records = json.loads(path.read_text())
    next(iter(stream.stream_questions(path, TASK)))  # a pass stopped early marks nothing
    first = [q.id for q in stream.stream_questions(path, TASK)]
    assert checked == [0, *range(len(records))]
    again = [q.id for q in stream.stream_questions(path, TASK)]
    assert again == first and len(checked) == len(records) + 1  # the same questions, unchecked
    monkeypatch.undo()  # the real checks, and a memo that remembers this file
    monkeypatch.setattr(stream, "_checked_files", set())
    list(stream.stream_questions(path, TASK))
    del records[-1]["profile"][0]["title"]
    path.write_text(json.dumps(records))  # changed since: checked in full again
    with pytest.raises(LaMPDataError, match=rf"record {len(records) - 1}.*profile\[0\]\.title"):
        list(stream.stream_questions(path, TASK))
