"""LongLaMP's metrics against the reference implementations, in one process and on 2 gloo ranks.

ROUGE against ``rouge_score`` (the implementation `evaluate`'s ``rouge`` calls), BLEU against
``sacrebleu.corpus_bleu`` (what `evaluate`'s ``sacrebleu`` calls, exponential smoothing), METEOR
against ``nltk.translate.meteor_score``. NLTK's WordNet data is a separate download that the test
machines lack, so METEOR is checked with a lexicon without synonyms passed to both sides (exact and
stem matches), and the default path is checked to skip METEOR with one warning.
"""

from __future__ import annotations

import warnings

import pytest
import sacrebleu
from nltk.tokenize import TreebankWordTokenizer
from nltk.translate.meteor_score import meteor_score
from rouge_score import rouge_scorer

import lamp_pl.metrics.longform as longform
from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.metrics.longform import LongFormMetrics

PREDS = [
    "We study retrieval for personal text generation.\nOur model copies the user's style.",
    "the the the cat",
    "",
    "A review: great sound, poor battery, would buy again!",
    "Completely unrelated words appear here",
    "line one\n\nline two shares words with line one",
]
REFS = [
    "We study personalized generation of long text.\nThe model learns the style of each user.",
    "the cat sat on the mat",
    "nothing was generated",
    "Great sound but the battery is poor; I would buy it again.",
    "here appear words unrelated completely",
    "line two\nline one shares words",
]
ROUGE = {"rouge-1": "rouge1", "rouge-2": "rouge2", "rouge-L": "rougeL", "rouge-LSum": "rougeLsum"}


class NoSynonyms:
    """A lexicon with no synonyms: METEOR then matches exact words and Porter stems only."""

    def synsets(self, word: str) -> list:
        return []


def meteor_resources() -> tuple:
    return TreebankWordTokenizer().tokenize, NoSynonyms()


def reference(preds: list[str], refs: list[str]) -> dict[str, float]:
    scorer = rouge_scorer.RougeScorer(list(ROUGE.values()))
    scores = [scorer.score(r.strip(), p.strip()) for p, r in zip(preds, refs)]
    result = {ours: sum(s[theirs].fmeasure for s in scores) / len(scores) for ours, theirs in ROUGE.items()}
    result["bleu"] = sacrebleu.corpus_bleu([p.strip() for p in preds], [[r.strip() for r in refs]]).score
    tokenize, lexicon = meteor_resources()
    result["meteor"] = sum(
        meteor_score([tokenize(r.strip())], tokenize(p.strip()), wordnet=lexicon) for p, r in zip(preds, refs)
    ) / len(preds)
    return result


def check(values: dict[str, float], want: dict[str, float]) -> None:
    assert set(values) == set(want)
    for name, value in want.items():
        assert values[name] == pytest.approx(value, abs=1e-9), name


def test_single_process_matches_references() -> None:
    metric = LongFormMetrics(meteor=meteor_resources())
    metric.update(PREDS[:2], REFS[:2])
    metric.update(PREDS[2:], REFS[2:])  # BLEU is a corpus score: the batches' statistics add up
    values = {k: float(v) for k, v in metric.compute().items()}
    check(values, reference(PREDS, REFS))
    assert 0 < values["bleu"] < 100 and 0 < values["rouge-2"] < values["rouge-1"] < 1


def test_without_wordnet_meteor_is_skipped_with_one_warning(monkeypatch) -> None:
    monkeypatch.setattr(longform, "_warned", False)
    with pytest.warns(UserWarning, match="METEOR skipped.*nltk.downloader wordnet") as caught:
        first = build_metrics("longform")
        second = build_metrics("longform")
    assert len([w for w in caught if "METEOR" in str(w.message)]) == 1
    for metric in (first, second):
        metric.update(PREDS, REFS)
        values = {k: float(v) for k, v in metric.compute().items()}
        want = reference(PREDS, REFS)
        del want["meteor"]
        check(values, want)


def _job(rank: int, shard: tuple) -> dict:
    """One rank's shard, computed (and synced) on the shared gloo group."""
    metric = LongFormMetrics(meteor=meteor_resources())
    preds, refs = shard
    metric.update(preds, refs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {k: v.item() for k, v in metric.compute().items()}


def test_two_gloo_ranks_match_the_references(gloo_ranks) -> None:
    shards = [(PREDS[:2], REFS[:2]), (PREDS[2:], REFS[2:])]  # uneven, as DDP's unpadded evaluation
    want = reference(PREDS, REFS)
    for values in gloo_ranks.run(_job, shards):
        check(values, want)
