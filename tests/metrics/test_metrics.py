"""Parity tests: lamp_pl.metrics.lamp vs. the official LaMP evaluation semantics.

References are scikit-learn and rouge_score applied exactly as the official
LaMP scripts apply them; inputs are seeded-random or hypothesis-generated and
deliberately include whitespace padding, out-of-label-set outputs, unparseable
ratings, punctuation/case variation and empty strings.
"""

from __future__ import annotations

import math
import random
import warnings

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rouge_score import rouge_scorer
from sklearn.metrics import accuracy_score, f1_score, mean_absolute_error, mean_squared_error

from lamp_pl.metrics.lamp import (
    ClassificationMetrics,
    GenerationMetrics,
    RegressionMetrics,
    build_metrics,
    rouge_tokenize,
)

LAMP1_LABELS = ["[1]", "[2]"]
LAMP2_LABELS = ["women", "religion", "politics", "style & beauty", "entertainment", "culture & arts", "sports"]
WHITESPACE = ["", " ", "\n", "\t ", "  \n"]
FAST = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])

_SCORER = rouge_scorer.RougeScorer(["rouge1", "rougeL"], use_stemmer=False)


# ---------------------------------------------------------------- references
def ref_classification(preds: list[str], golds: list[str], labels: list[str]) -> dict[str, float]:
    """The official LaMP-1/2 evaluation: strip, map to label index or -1, sklearn."""

    def to_idx(x: str) -> int:
        try:
            return labels.index(x.strip())
        except ValueError:
            return -1

    p, g = [to_idx(x) for x in preds], [to_idx(x) for x in golds]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # sklearn's zero-division warnings
        f1 = f1_score(g, p, labels=list(range(len(labels))), average="macro")
    return {"accuracy": accuracy_score(g, p), "f1": f1}


def ref_regression(preds: list[str], golds: list[str]) -> dict[str, float]:
    """The official LaMP-3 evaluation, including the worst-case fallback."""

    def parse(x: str, y: str) -> float:
        try:
            return float(x.strip())
        except ValueError:
            y = float(y.strip())
            return 1.0 if abs(1 - y) > abs(5 - y) else 5.0

    p = [parse(x, y) for x, y in zip(preds, golds)]
    g = [float(y.strip()) for y in golds]
    return {"mae": mean_absolute_error(g, p), "rmse": math.sqrt(mean_squared_error(g, p))}


def ref_generation(preds: list[str], golds: list[str]) -> dict[str, float]:
    scores = [_SCORER.score(target=g.strip(), prediction=p.strip()) for p, g in zip(preds, golds)]
    return {
        "rouge-1": float(np.mean([s["rouge1"].fmeasure for s in scores])),
        "rouge-L": float(np.mean([s["rougeL"].fmeasure for s in scores])),
    }


# ---------------------------------------------------------------- data
def _pad(rng: random.Random, text: str) -> str:
    return rng.choice(WHITESPACE) + text + rng.choice(WHITESPACE)


def make_classification(rng: random.Random, n: int, labels: list[str]) -> tuple[list[str], list[str]]:
    junk = ["", "none", labels[0].upper(), labels[-1] + ".", "[3]", "politics, sports"]
    preds = [_pad(rng, rng.choice(labels if rng.random() < 0.8 else junk)) for _ in range(n)]
    # A few out-of-set golds exercise the -1 == -1 accuracy match.
    golds = [_pad(rng, rng.choice(labels if rng.random() < 0.95 else junk)) for _ in range(n)]
    return preds, golds


def make_regression(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    junk = ["", "five", "3 stars", "rating: 4", "[4]", "4/5"]
    odd_numbers = ["2.5", "4.0", "1e0", "+3", "-1", "10"]
    golds = [_pad(rng, str(rng.randint(1, 5))) for _ in range(n)]
    preds = []
    for _ in range(n):
        r = rng.random()
        pool = junk if r < 0.2 else odd_numbers if r < 0.35 else [str(rng.randint(1, 5))]
        preds.append(_pad(rng, rng.choice(pool)))
    return preds, golds


_WORDS = ["The", "cat", "sat", "on", "the", "mat", "Dog's", "U.S.", "café", "2024", "don't", "A", "a", "mat!"]


def _sentence(rng: random.Random) -> str:
    if rng.random() < 0.05:
        return rng.choice(["", "   ", "!!! ...", "é"])  # no rouge tokens at all
    words = rng.choices(_WORDS, k=rng.randint(1, 12))
    return _pad(rng, " ".join(w + rng.choice(["", "", ",", ".", "--"]) for w in words))


def make_generation(rng: random.Random, n: int) -> tuple[list[str], list[str]]:
    return [_sentence(rng) for _ in range(n)], [_sentence(rng) for _ in range(n)]


def run_batched(metric, preds: list[str], golds: list[str], rng: random.Random) -> dict[str, float]:
    """Feed data in random-size batches (possibly empty) and return plain floats."""
    i = 0
    while i < len(preds):
        j = i + rng.randint(0, 7)
        metric.update(preds[i:j], golds[i:j])
        i = j
    return {k: v.item() for k, v in metric.compute().items()}


def assert_close(got: dict[str, float], want: dict[str, float]) -> None:
    assert set(got) == set(want)
    for key in want:
        assert got[key] == pytest.approx(want[key], rel=1e-9, abs=1e-12), key


# ---------------------------------------------------------------- parity tests
@pytest.mark.parametrize("labels", [LAMP1_LABELS, LAMP2_LABELS])
@pytest.mark.parametrize("seed", range(5))
def test_classification_matches_sklearn(labels: list[str], seed: int) -> None:
    rng = random.Random(seed)
    preds, golds = make_classification(rng, rng.randint(1, 200), labels)
    got = run_batched(ClassificationMetrics(labels), preds, golds, rng)
    assert_close(got, ref_classification(preds, golds, labels))


@FAST
@given(
    st.lists(
        st.tuples(st.sampled_from(LAMP2_LABELS + ["", " politics ", "other"]), st.sampled_from(LAMP2_LABELS + ["x"])),
        min_size=1,
        max_size=40,
    )
)
def test_classification_hypothesis(pairs: list[tuple[str, str]]) -> None:
    preds, golds = map(list, zip(*pairs))
    metric = ClassificationMetrics(LAMP2_LABELS)
    metric.update(preds, golds)
    got = {k: v.item() for k, v in metric.compute().items()}
    assert_close(got, ref_classification(preds, golds, LAMP2_LABELS))


def test_classification_out_of_set_counts_as_miss() -> None:
    metric = ClassificationMetrics(["a", "b"])
    metric.update([" a ", "c", "b\n", "zzz"], ["a", "b", "a", "zzz"])
    out = metric.compute()
    # Correct: "a", and the out-of-set pair (-1 == -1); "c" is a false negative for "b".
    assert out["accuracy"].item() == pytest.approx(0.5)
    assert out["f1"].item() == pytest.approx((2 / 3 + 0.0) / 2)


@pytest.mark.parametrize("seed", range(5))
def test_regression_matches_sklearn(seed: int) -> None:
    rng = random.Random(seed)
    preds, golds = make_regression(rng, rng.randint(1, 200))
    got = run_batched(RegressionMetrics(), preds, golds, rng)
    assert_close(got, ref_regression(preds, golds))


def test_regression_unparseable_takes_far_end() -> None:
    metric = RegressionMetrics()
    # gold 2 -> fallback 5 (err 3); gold 4 -> fallback 1 (err 3); gold 3 is a tie -> 5 (err 2).
    metric.update(["n/a", "", " four "], ["2", " 4 ", "3"])
    out = metric.compute()
    assert out["mae"].item() == pytest.approx(8 / 3)
    assert out["rmse"].item() == pytest.approx(math.sqrt(22 / 3))


@pytest.mark.parametrize("seed", range(5))
def test_generation_matches_rouge_score(seed: int) -> None:
    rng = random.Random(seed)
    preds, golds = make_generation(rng, rng.randint(1, 100))
    got = run_batched(GenerationMetrics(), preds, golds, rng)
    assert_close(got, ref_generation(preds, golds))


@FAST
@given(st.text(max_size=60), st.text(max_size=60))
def test_generation_hypothesis_arbitrary_unicode(pred: str, gold: str) -> None:
    assert rouge_tokenize(gold) == _SCORER._tokenizer.tokenize(gold)
    metric = GenerationMetrics()
    metric.update([pred], [gold])
    got = {k: v.item() for k, v in metric.compute().items()}
    assert_close(got, ref_generation([pred], [gold]))


@pytest.mark.parametrize(
    ("pred", "gold"),
    [("", "a b"), ("a b", ""), ("", ""), ("?!", "a"), ("The CAT, sat.", "the cat sat"), ("İstanbul", "i stanbul")],
)
def test_generation_edge_cases(pred: str, gold: str) -> None:
    metric = GenerationMetrics()
    metric.update([pred], [gold])
    got = {k: v.item() for k, v in metric.compute().items()}
    assert_close(got, ref_generation([pred], [gold]))


# ---------------------------------------------------------------- API behaviour
@pytest.mark.parametrize(
    ("kind", "keys"),
    [("classification", {"accuracy", "f1"}), ("regression", {"mae", "rmse"}), ("generation", {"rouge-1", "rouge-L"})],
)
def test_compute_without_updates_returns_zeros(kind: str, keys: set[str]) -> None:
    metric = build_metrics(kind, LAMP1_LABELS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # torchmetrics warns about compute-before-update
        out = metric.compute()
    assert set(out) == keys
    for value in out.values():
        assert value.is_floating_point() and value.item() == 0.0


def test_forward_returns_batch_value_and_accumulates() -> None:
    metric = ClassificationMetrics(LAMP1_LABELS)
    batch = metric(["[1]", "[2]"], ["[1]", "[1]"])
    assert batch["accuracy"].item() == pytest.approx(0.5)
    metric(["[2]"], ["[2]"])
    assert metric.compute()["accuracy"].item() == pytest.approx(2 / 3)
    metric.reset()
    metric.update(["[2]"], ["[1]"])
    assert metric.compute()["accuracy"].item() == 0.0


def test_build_metrics_validation() -> None:
    assert isinstance(build_metrics("classification", LAMP1_LABELS), ClassificationMetrics)
    assert isinstance(build_metrics("regression", None), RegressionMetrics)
    assert isinstance(build_metrics("generation", None), GenerationMetrics)
    with pytest.raises(ValueError):
        build_metrics("classification", None)
    with pytest.raises(ValueError):
        build_metrics("ranking", None)
    with pytest.raises(ValueError):
        RegressionMetrics().update(["1"], ["1", "2"])
    with pytest.raises(TypeError):
        GenerationMetrics().update("abc", "abc")


# ---------------------------------------------------------------- DDP (2 gloo ranks)
def _ddp_job(rank: int, cases: dict) -> dict:
    """One rank's share of every case, computed (and synced) on the shared gloo group."""
    results = {}
    for name, (kind, labels, shards) in cases.items():
        metric = build_metrics(kind, labels)
        preds, golds = shards[rank]
        if preds:  # a rank with an empty shard must still take part in the sync
            metric.update(preds, golds)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            results[name] = {k: v.item() for k, v in metric.compute().items()}
    return results


@pytest.mark.timeout(120)
def test_ddp_two_ranks_match_single_process(gloo_ranks) -> None:
    rng = random.Random(1234)
    data = {
        "classification": (LAMP2_LABELS, make_classification(rng, 101, LAMP2_LABELS)),
        "regression": (None, make_regression(rng, 77)),
        "generation": (None, make_generation(rng, 53)),
    }
    cases, expected = {}, {}
    for kind, (labels, (preds, golds)) in data.items():
        cut = len(preds) // 3  # deliberately uneven shards
        shards = [(preds[:cut], golds[:cut]), (preds[cut:], golds[cut:])]
        cases[kind] = (kind, labels, shards)
        expected[kind] = {k: v.item() for k, v in _single(kind, labels, preds, golds).items()}
    # One rank with no data at all, as happens on tiny validation splits.
    preds, golds = data["classification"][1]
    cases["empty_rank"] = ("classification", LAMP2_LABELS, [(preds, golds), ([], [])])
    expected["empty_rank"] = expected["classification"]

    per_rank = gloo_ranks.run(_ddp_job, [cases, cases])

    refs = {
        "classification": ref_classification(*data["classification"][1], LAMP2_LABELS),
        "regression": ref_regression(*data["regression"][1]),
        "generation": ref_generation(*data["generation"][1]),
    }
    for results in per_rank:
        for name, want in expected.items():
            assert_close(results[name], want)
        for kind, ref in refs.items():
            assert_close(results[kind], ref)


def _single(kind: str, labels: list[str] | None, preds: list[str], golds: list[str]) -> dict[str, torch.Tensor]:
    metric = build_metrics(kind, labels)
    metric.update(preds, golds)
    return metric.compute()


@pytest.mark.parametrize("pred", ["nan", "NaN", "inf", "-inf", "Infinity", " -Infinity "])
def test_regression_nan_and_inf_count_as_unparseable(pred: str) -> None:
    metric = RegressionMetrics()
    metric.update([pred, "2"], ["2", "2"])  # the far end of 1-5 from 2 is 5
    assert metric.compute()["mae"].item() == pytest.approx(1.5)
    assert torch.isfinite(metric.compute()["rmse"])
