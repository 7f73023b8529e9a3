"""Each retriever's contract, on hand-written profiles and on synthetic data."""

from __future__ import annotations

import json
import math
import pickle
import random
from pathlib import Path

import numpy as np
import pytest

from lamp_pl.data.lamp import load_split
from lamp_pl.retrieval import CacheError, RetrievalConfig, load_retrieved, prepare_retrieval
from lamp_pl.retrieval.results import RetrievalResults
from lamp_pl.retrieval.retrievers import interleave_newest, parse_date, resolve_k

TASK = "LaMP_4"
QUERY = "quantum computing breakthrough in qubits"


def item(uid: str, title: str, text: str, date: str | None = None) -> dict:
    return {"id": uid, "title": title, "text": text, **({"date": date} if date else {})}


PROFILE = [
    item("a1", "cooking pasta", "boil water add salt", "2020-01-05"),
    item("a2", "quantum computing", "qubits research news", "2021/03/01"),
    item("a3", "gardening tips", "plant roses in spring", "03/15/2021"),
    item("a4", "football", "match results", "2019-12-31 23:59:59"),
    item("a5", "misc", "an undated note"),
    item("a6", "quantum computing", "breakthrough in qubits", "2018-06-01T10:00:00"),
]
RECENCY = ["a3", "a2", "a1", "a4", "a6", "a5"]
OTHERS = [item(f"b{i}", f"other topic {i}", f"words about subject {i} here", f"2020-02-{i + 1:02d}") for i in range(8)]


@pytest.fixture(scope="module")
def handmade(tmp_path_factory) -> Path:
    """dev: q1 (user u1, six items), q2 (user u2, empty), q3 (user u3, eight items), q4 (user u1, three)."""
    root = tmp_path_factory.mktemp("handmade")
    ask = "Generate a headline for the following article: "
    questions = [
        {"id": "q1", "user_id": "u1", "input": ask + QUERY, "profile": PROFILE},
        {"id": "q2", "user_id": "u2", "input": ask + "nothing to go on", "profile": []},
        {"id": "q3", "user_id": "u3", "input": ask + "subject 3 words", "profile": OTHERS},
        {"id": "q4", "user_id": "u1", "input": ask + "pasta and salt", "profile": PROFILE[:3]},
    ]
    (root / TASK).mkdir()
    (root / TASK / "dev_questions.json").write_text(json.dumps(questions))
    return root


def retrieve(data_dir, tiny_bert, cache, k: float = 3, offset: int = 0, **options) -> dict[str, list]:
    cfg = RetrievalConfig(**{"encoder": str(tiny_bert), "k_max": 6, **options})
    prepare_retrieval(TASK, data_dir, ["dev"], cfg, cache, progress=False)
    return {r.question_id: r for r in load_retrieved(TASK, data_dir, "dev", cfg, cache, k=k, offset=offset)}


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("cache")


def ids(found, qid) -> list[str]:
    return found[qid].item_ids


def test_none_and_empty_profiles(handmade, tiny_bert, cache):
    assert all(not r.items for r in retrieve(handmade, tiny_bert, cache, retriever="none").values())
    for name in ("contriever", "bm25", "recency", "random", "recency_contriever"):
        found = retrieve(handmade, tiny_bert, cache, k=100, retriever=name, k_max=-1)
        assert ids(found, "q2") == [], name
        assert sorted(ids(found, "q1")) == sorted(i["id"] for i in PROFILE), name  # k > profile: all, ranked
        assert len(found["q1"].scores) == len(PROFILE) and found["q1"].items[0]["title"]


def test_bm25_ranks_the_item_sharing_query_words_first(handmade, tiny_bert, cache):
    found = retrieve(handmade, tiny_bert, cache, retriever="bm25")
    assert ids(found, "q1")[:2] == ["a6", "a2"] and found["q1"].scores[0] > found["q1"].scores[1] > 0
    assert ids(found, "q3")[0] == "b3" and ids(found, "q4")[0] == "a1"
    assert ids(retrieve(handmade, tiny_bert, cache, retriever="bm25", bm25_tokenizer="bm25s"), "q1")[0] == "a6"


def test_drop_identical(handmade, tiny_bert, cache):
    for name in ("bm25", "contriever", "recency"):
        found = retrieve(handmade, tiny_bert, cache, k=10, retriever=name, drop_identical=True, k_max=-1)
        assert "a6" not in ids(found, "q1") and len(ids(found, "q1")) == 5
    assert ids(retrieve(handmade, tiny_bert, cache, retriever="bm25", drop_identical=True), "q1")[0] == "a2"


def test_recency_orders_by_date_variants():
    assert parse_date("03/15/2021").month == 3 and parse_date("2021/03/01").day == 1
    assert parse_date("2019-12-31 23:59:59").hour == 23 and parse_date("2018-06-01T10:00:00+02:00").hour == 8
    assert parse_date("not a date") is None and parse_date(None) is None


def test_recency_newest_first_undated_last(handmade, tiny_bert, cache):
    found = retrieve(handmade, tiny_bert, cache, k=6, retriever="recency")
    assert ids(found, "q1") == RECENCY and ids(found, "q4") == ["a3", "a2", "a1"]


def test_random_is_seeded_per_question(handmade, tiny_bert, tmp_path):
    first = retrieve(handmade, tiny_bert, tmp_path / "a", k=6, retriever="random")
    again = retrieve(handmade, tiny_bert, tmp_path / "b", k=6, retriever="random")
    other = retrieve(handmade, tiny_bert, tmp_path / "a", k=6, retriever="random", seed=1)
    assert ids(first, "q1") == ids(again, "q1") and ids(first, "q3") == ids(again, "q3")
    assert ids(first, "q1") != ids(other, "q1") or ids(first, "q3") != ids(other, "q3")
    assert sorted(ids(first, "q1")) == sorted(i["id"] for i in PROFILE)  # without replacement: a shuffle
    drawn = retrieve(handmade, tiny_bert, tmp_path / "a", k=10, retriever="random", with_replacement=True, k_max=10)
    assert len(ids(drawn, "q4")) == 10 and set(ids(drawn, "q4")) <= {"a1", "a2", "a3"}


def test_fractional_k_and_offset(handmade, tiny_bert, cache):
    full = retrieve(handmade, tiny_bert, cache, k=6, retriever="recency")
    half = retrieve(handmade, tiny_bert, cache, k=0.5, retriever="recency")
    assert ids(half, "q1") == RECENCY[:3] and ids(half, "q4") == ["a3", "a2"]  # 1.5 rounds half up
    assert ids(half, "q3") == ids(full, "q3")[:4] and ids(half, "q2") == []
    assert len(ids(retrieve(handmade, tiny_bert, cache, k=0.01, retriever="recency"), "q1")) == 1
    shifted = retrieve(handmade, tiny_bert, cache, k=2, offset=1, retriever="recency")
    assert ids(shifted, "q1") == RECENCY[1:3] and ids(shifted, "q4") == ["a2", "a1"]
    with pytest.raises(ValueError, match="k_max"):
        retrieve(handmade, tiny_bert, cache, k=4, offset=3, retriever="recency")  # needs 7 of 6 cached
    assert [resolve_k(k, 10) for k in (0, 0.04, 0.25, 0.35, 3, 20.0)] == [0, 1, 3, 4, 3, 20]


def test_recency_contriever_takes_half_from_each(handmade, tiny_bert, cache):
    dense = ids(retrieve(handmade, tiny_bert, cache, k=6, retriever="contriever"), "q1")
    for k in range(1, 7):
        got = ids(retrieve(handmade, tiny_bert, cache, k=k, retriever="recency_contriever"), "q1")
        newest = RECENCY[: math.ceil(k / 2)]
        assert len(got) == len(set(got)) == k and set(got) == set(newest) | set(
            [i for i in dense if i not in newest][: k // 2]
        )


def test_interleave_prefixes_are_the_selection_for_every_k():
    rng = random.Random(0)
    for n in range(1, 9):
        for _ in range(30):
            newest, dense = rng.sample(range(n), n), rng.sample(range(n), n)
            merged = interleave_newest(newest, dense)
            for k in range(1, n + 1):
                head = newest[: math.ceil(k / 2)]
                assert set(merged[:k]) == set(head) | set([d for d in dense if d not in head][: k // 2])


def test_mixed_pairs_inputs_of_one_retriever_with_outputs_of_another(handmade, tiny_bert, cache):
    inputs = retrieve(handmade, tiny_bert, cache, k=4, retriever="recency")["q1"].items
    outputs = retrieve(handmade, tiny_bert, cache, k=4, retriever="bm25")["q1"].items
    mixed = retrieve(handmade, tiny_bert, cache, k=4, retriever="mixed", mixed_inputs="recency", mixed_outputs="bm25")[
        "q1"
    ]
    assert [m["text"] for m in mixed.items] == [i["text"] for i in inputs]
    assert [m["title"] for m in mixed.items] == [o["title"] for o in outputs]
    assert mixed.item_ids == [f"{i['id']}+{o['id']}" for i, o in zip(inputs, outputs, strict=True)]


@pytest.mark.parametrize("name", ["other_users_random", "other_users_bm25"])
def test_other_users_never_returns_the_users_own_items(name, data_root, tiny_bert, tmp_path):
    k = 6
    found = retrieve(data_root, tiny_bert, tmp_path, k=k, retriever=name, k_max=k)
    again = retrieve(data_root, tiny_bert, tmp_path / "again", k=k, retriever=name, k_max=k)
    for question in load_split(data_root, TASK, "dev"):
        got = found[question.id]
        own_ids = {i["id"] for i in question.profile}
        own_texts = {(i["title"], i["text"]) for i in question.profile}
        assert len(got.items) == k and len(set(got.item_ids)) == k
        assert not own_ids & set(got.item_ids) and not own_texts & {(i["title"], i["text"]) for i in got.items}
        assert got.item_ids == again[question.id].item_ids  # seeded


def test_other_users_bm25_pool_matches_query_words(handmade, tiny_bert, cache):
    found = retrieve(handmade, tiny_bert, cache, k=2, retriever="other_users_bm25", other_users_pool=100)
    assert ids(found, "q1")[0] == "b3" or found["q1"].scores[0] == 0  # q1's words occur in nobody else's items
    assert not set(ids(found, "q4")) & {i["id"] for i in PROFILE}  # u1's items are excluded for both questions
    assert ids(found, "q3")[0].startswith("a")


def test_results_are_plain_numpy_and_missing_cache_is_explained(handmade, tiny_bert, tmp_path):
    cfg = RetrievalConfig(retriever="bm25", k_max=4)
    with pytest.raises(CacheError, match="prepare_retrieval"):
        load_retrieved(TASK, handmade, "dev", cfg, tmp_path, k=2)
    summary = prepare_retrieval(TASK, handmade, ["dev"], cfg, tmp_path, progress=False)
    (path,) = (Path(summary["cache_dir"]) / "results").glob("dev-*.npz")
    with np.load(path) as data:
        assert {"offsets", "items", "scores"} <= set(data.files)
    results = pickle.loads(pickle.dumps(RetrievalResults(dict(np.load(path)))))
    assert results.offsets[-1] == len(results.items) == 4 + 0 + 4 + 3
    second = prepare_retrieval(TASK, handmade, ["dev"], cfg, tmp_path, progress=False)
    assert second["reused"] and second["encoded"] == 0
