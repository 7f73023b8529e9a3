"""Multi-label outputs and metrics: string round trip, scikit-learn parity, 2 gloo ranks."""

from __future__ import annotations

import random

import numpy as np
import pytest
from sklearn.metrics import f1_score

from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.metrics.multilabel import format_labels, parse_labels

LABELS = ["anger", "joy", "fear", "love", "neutral"]


def _random_case(seed: int, n: int = 60, users: int = 5):
    rng = random.Random(seed)
    gold = [[rng.random() < 0.3 for _ in LABELS] for _ in range(n)]
    pred = [[g if rng.random() < 0.7 else not g for g in row] for row in gold]
    who = [f"u{rng.randrange(users)}" for _ in range(n)]

    def text(row):  # shuffled order, odd case and spacing: the parser must not care
        chosen = [label.upper() if rng.random() < 0.3 else label for label, on in zip(LABELS, row) if on]
        rng.shuffle(chosen)
        return " ,  ".join(chosen) or "none"

    return (
        [text(r) for r in pred],
        [format_labels([lb for lb, on in zip(LABELS, r) if on], LABELS) for r in gold],
        who,
        np.array(pred),
        np.array(gold),
    )


def _reference(pred: np.ndarray, gold: np.ndarray, who: list[str]) -> dict[str, float]:
    users = sorted(set(who))
    per_user = [
        f1_score(gold[[w == u for w in who]], pred[[w == u for w in who]], average="macro", zero_division=0)
        for u in users
    ]
    return {
        "f1_macro": f1_score(gold, pred, average="macro", zero_division=0),
        "f1_micro": f1_score(gold, pred, average="micro", zero_division=0),
        "exact_match": float((pred == gold).all(1).mean()),
        "f1_macro_user_mean": float(np.mean(per_user)),
    }


def test_format_and_parse_round_trip() -> None:
    assert format_labels({"joy", "anger"}, LABELS) == "anger, joy"
    assert format_labels([], LABELS) == "none"
    assert parse_labels(" JOY,anger ,, bogus", LABELS) == [True, True, False, False, False]
    assert parse_labels("none", LABELS) == [False] * 5
    with pytest.raises(ValueError, match="unknown label"):
        format_labels(["rage"], LABELS)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_matches_sklearn(seed: int) -> None:
    preds, golds, who, pred, gold = _random_case(seed)
    metric = build_metrics("multilabel", LABELS)
    for start in range(0, len(preds), 7):  # several batches
        metric.update(preds[start : start + 7], golds[start : start + 7], who[start : start + 7])
    got = {k: v.item() for k, v in metric.compute().items()}
    assert got == pytest.approx(_reference(pred, gold, who), abs=1e-12)


def test_without_users_has_no_user_mean() -> None:
    metric = build_metrics("multilabel", LABELS)
    assert set(metric.compute()) == {"f1_macro", "f1_micro", "exact_match"}
    metric.update(["joy"], ["joy"])
    assert metric.compute()["f1_micro"].item() == 1.0


def _job(rank: int, shards: dict) -> dict:
    """One rank's share of each split, computed (and synced) on the shared gloo group."""
    results = {}
    for name, per_rank in shards.items():
        metric = build_metrics("multilabel", LABELS)
        preds, golds, who = per_rank[rank]
        if preds:  # an empty rank must still take part in the sync
            metric.update(preds, golds, who)
        results[name] = {k: v.item() for k, v in metric.compute().items()}
    return results


@pytest.mark.timeout(120)
def test_two_gloo_ranks_match_sklearn(gloo_ranks) -> None:
    preds, golds, who, pred, gold = _random_case(7, n=83)
    cut = 29  # uneven shards, and the same users on both ranks
    shards = {
        "split": [(preds[:cut], golds[:cut], who[:cut]), (preds[cut:], golds[cut:], who[cut:])],
        "empty_rank": [(preds, golds, who), ([], [], [])],
    }
    per_rank = gloo_ranks.run(_job, [shards, shards])
    want = _reference(pred, gold, who)
    for results in per_rank:
        for name in shards:
            assert results[name] == pytest.approx(want, abs=1e-12)
