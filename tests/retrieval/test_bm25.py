"""Official-parity BM25: lamp_pl's Okapi scoring and tie order against rank_bm25.BM25Okapi."""

from __future__ import annotations

import random
from collections import Counter

import numpy as np
import pytest

from lamp_pl.retrieval.bm25 import okapi_idf, okapi_order, okapi_scores

rank_bm25 = pytest.importorskip("rank_bm25")

# Hand-written, LaMP-shaped profiles: short English texts where "the", "of", "a" sit in more than
# half the items (negative idf, replaced by epsilon x mean idf), plus exact duplicates (ties).
PROFILES = {
    "papers": [
        "Learning to rank with partially labeled data for the web",
        "A study of the effect of query length on retrieval of the documents",
        "Personalized search using the history of a user",
        "The role of context in the personalization of a search engine",
        "A neural model of the user for query suggestion",
        "Learning to rank with partially labeled data for the web",
        "Efficient indexing of the web at scale",
    ],
    "reviews": [
        "This is the best blender I have ever owned and it is quiet",
        "The lid broke after a week and the motor is loud",
        "It is fine for the price but the cord is short",
        "I love it , the color is great and it is easy to clean",
        "Returned it . The motor died and the smell was awful",
        "great",
    ],
    "tweets": [
        "i love the beach in the summer",
        "coffee first , then the world",
        "the world is a beach",
        "monday again . the coffee is cold",
        "summer summer summer",
        "",
        "the the the",
    ],
}
QUERIES = [
    "learning to rank the web documents",
    "the motor is loud and the lid broke",
    "the beach the coffee",
    "the of a",
    "nothing matches here",
    "summer summer world",
]


def _official_top(query: list[str], documents: list[list[str]], n: int) -> list[int]:
    model = rank_bm25.BM25Okapi(documents)
    return model.get_top_n(query, list(range(len(documents))), n=n)


def _ours_top(query: list[str], documents: list[list[str]], n: int) -> list[int]:
    return okapi_order(okapi_scores(query, documents))[:n].tolist()


@pytest.mark.parametrize("name", sorted(PROFILES))
def test_scores_and_top_k_equal_rank_bm25_on_stop_word_profiles(name):
    documents = [text.split() for text in PROFILES[name]]
    model = rank_bm25.BM25Okapi(documents)
    for text in QUERIES:
        query = text.split()
        # Bit-identical scores, so exact ties stay exact ties.
        assert okapi_scores(query, documents).tolist() == model.get_scores(query).tolist()
        for n in (1, 3, 5, len(documents)):
            assert _ours_top(query, documents, n) == _official_top(query, documents, n)


def test_negative_idf_is_floored_at_epsilon_times_mean_idf():
    documents = [text.split() for text in PROFILES["papers"]]
    ours, model = okapi_idf(documents), rank_bm25.BM25Okapi(documents)
    assert ours == model.idf
    assert ours["the"] == pytest.approx(0.25 * model.average_idf) and ours["the"] > 0


def test_random_profiles_with_many_ties():
    rng = random.Random(8)
    vocabulary = ["the", "a", "of", "x", "y", "z", "w"]
    for trial in range(300):
        size = rng.choice([1, 2, 3, 5, 8, 16, 17, 24, 40, 90])
        # Few words, many exact duplicates: most scores tie.
        pool = [[rng.choice(vocabulary) for _ in range(rng.randint(1, 4))] for _ in range(rng.randint(1, 4))]
        documents = [list(rng.choice(pool)) for _ in range(size)]
        query = [rng.choice(vocabulary) for _ in range(rng.randint(1, 5))]
        for n in (1, 3, 5, size):
            assert _ours_top(query, documents, n) == _official_top(query, documents, n), (trial, documents, query)


def test_ties_put_the_later_profile_item_first():
    documents = [["a", "b"], ["c"], ["a", "b"], ["d"], ["e"]]
    assert _ours_top(["a"], documents, 5) == [2, 0, 4, 3, 1]
    # "a" in 3 of 4 items and a negative mean idf: the floor is negative too, so an item without
    # the query word outranks those with it, as in the official code.
    assert _ours_top(["a"], [["a", "b"], ["c"], ["a", "b"], ["a", "b"]], 4) == [1, 3, 2, 0]
    assert okapi_scores(["q"], documents).tolist() == [0.0] * 5
    assert okapi_scores(["a"], []).shape == (0,)
    assert np.all(okapi_scores(["a"], [[], []]) == 0)


def test_official_is_the_default_and_bm25s_an_option():
    from lamp_pl.retrieval.config import RetrievalConfig
    from lamp_pl.retrieval.registry import make_retriever

    for name in ("bm25", "other_users_bm25"):
        assert make_retriever(name, RetrievalConfig(retriever=name)).impl == "official"
    fast = make_retriever("bm25", RetrievalConfig(retriever="bm25", bm25_impl="bm25s"))
    assert fast.impl == "bm25s" and fast.settings()["impl"] == "bm25s"
    texts = PROFILES["papers"]
    query = "the of a web"
    assert (
        make_retriever("bm25", RetrievalConfig()).scores(query, texts).tolist()
        == rank_bm25.BM25Okapi([t.split() for t in texts]).get_scores(query.split()).tolist()
    )


@pytest.mark.parametrize("tokenizer", ["whitespace", "bm25s"])
def test_shared_statistics_rank_as_each_question_alone_on_time_based_profiles(tmp_path, tokenizer):
    """Time-based users (histories that grow question by question, so profiles overlap) with a
    small vocabulary (words in most items: negative idf, many ties): the retriever's per-user
    shared statistics give, question by question, bit-identical scores and the same ranking as
    rank_bm25 and `okapi_scores` built on that question's own candidates alone."""
    from lamp_pl.data.stream import load_questions
    from lamp_pl.data.synthetic import write_synthetic
    from lamp_pl.retrieval.build import build_profile_index
    from lamp_pl.retrieval.protocol import SplitView
    from lamp_pl.retrieval.retrievers import BM25Retriever
    from lamp_pl.tasks import get_task

    task = get_task("LaMP_4")
    spec = {
        "users": 6,
        "questions_per_user": 4,
        "profile_size": (5, 30),
        "vocab_size": 30,
        "topics": 2,
        "text_words": (2, 9),
    }
    write_synthetic(tmp_path / "data", task="LaMP_4", time_based=True, **spec)
    index, _ = build_profile_index(task, tmp_path / "data", ["dev"], tmp_path / "cache", None, progress=False)
    questions = load_questions(tmp_path / "data", task, "dev", outputs=False)
    view = SplitView(task, index, "dev", questions)
    retriever = BM25Retriever(tokenizer=tokenizer)
    overlapping = floored = 0
    for q in range(len(view)):
        rows = view.candidates(q)
        if q and view.user(q) == view.user(q - 1):
            overlapping += len(set(rows.tolist()) & set(view.candidates(q - 1).tolist())) > 0
        shared = retriever.top(view, q, rows, len(rows))
        query = retriever.tokens([view.query(q)])[0]
        documents = retriever.tokens([view.text(int(r)) for r in rows])
        alone = okapi_scores(query, documents)
        in_most = {t for t, n in Counter(t for d in documents for t in set(d)).items() if n > len(documents) / 2}
        floored += bool(in_most & set(query))  # a query word with a negative idf, floored
        if documents:
            assert alone.tolist() == rank_bm25.BM25Okapi(documents).get_scores(query).tolist()
        order = okapi_order(alone)
        assert shared.items.tolist() == rows[order].tolist(), q
        assert shared.scores.tolist() == alone[order].astype(np.float32).tolist(), q
    assert floored and overlapping >= 6 * 2  # most of a user's questions share items with the one before
    # Each user's items were tokenized once: the kept statistics hold the union of a user's
    # candidates, fewer documents than the questions' candidates counted one by one.
    kept = view.shared[("bm25", tokenizer)]
    user = view.user(len(view) - 1)
    own = [q for q in range(len(view)) if view.user(q) == user]
    union = set().union(*(view.candidates(q).tolist() for q in own))
    assert len(kept[user].row) == len(union) < sum(len(view.candidates(q)) for q in own)
