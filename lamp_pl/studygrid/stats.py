"""Seeds and error bars: mean and standard deviation over a condition's seeds, and the paired
bootstrap confidence interval of its difference from a baseline condition.

The bootstrap resamples test questions (with replacement, seeded): each question's score is the
task's checkpoint metric (accuracy, MAE, ROUGE-1, F1) of its one prediction, averaged over the
seeds, and the statistic is the mean over the resampled questions of (condition - baseline). The
two conditions are paired: both are scored on the same questions, from their predictions files.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterable
from pathlib import Path

import numpy as np

SEED = "seed"


def condition(values: dict[str, str]) -> tuple[tuple[str, str], ...]:
    """A point's condition: its axis values except the seed (its seeds are repeats of it)."""
    return tuple((axis, value) for axis, value in values.items() if axis != SEED)


def mean_std(rows: Iterable[dict], metrics: list[str]) -> dict[str, float | int]:
    """``<metric>_mean`` and ``<metric>_std`` (sample standard deviation; 0 for one seed) and
    ``seeds`` (how many rows had the metric) over `rows`."""
    out: dict[str, float | int] = {}
    rows = list(rows)
    for metric in metrics:
        values = [float(row[metric]) for row in rows if isinstance(row.get(metric), int | float)]
        if values:
            out[f"{metric}_mean"] = statistics.fmean(values)
            out[f"{metric}_std"] = statistics.stdev(values) if len(values) > 1 else 0.0
        out["seeds"] = max(int(out.get("seeds", 0)), len(values))
    return out


def question_scores(task: str, predictions: str | Path, golds: dict[str, str]) -> dict[str, float]:
    """Each question's score under the task's checkpoint metric, from a predictions file."""
    from lamp_pl.evaluation.score import read_outputs
    from lamp_pl.metrics.lamp import build_metrics
    from lamp_pl.tasks import get_task

    spec = get_task(task)
    predicted = read_outputs(predictions, spec)
    scores = {}
    for question, output in predicted.items():
        if question not in golds:
            continue
        metric = build_metrics(spec.metric_kind, spec.labels)
        metric.update([output], [golds[question]])
        scores[question] = float(metric.compute()[spec.monitor])
    return scores


def split_golds(data_dir: str, task: str, split: str) -> dict[str, str]:
    """Question id -> gold output of a split."""
    from lamp_pl.data.lamp import load_split

    return {q.id: q.output for q in load_split(data_dir, task, split) if q.output is not None}


def seed_mean(per_seed: list[dict[str, float]]) -> dict[str, float]:
    """Each question's score averaged over the seeds (questions every seed scored)."""
    common = set.intersection(*(set(scores) for scores in per_seed)) if per_seed else set()
    return {q: statistics.fmean(scores[q] for scores in per_seed) for q in sorted(common)}


def paired_bootstrap(
    baseline: dict[str, float], other: dict[str, float], resamples: int = 1000, seed: int = 0
) -> dict[str, float]:
    """The mean difference ``other - baseline`` over their common questions and its 95% interval.

    Args:
        baseline: Question id -> score of the baseline condition.
        other: Question id -> score of the compared condition.
        resamples: Bootstrap resamples of the questions.
        seed: Seed of the resampling (`numpy.random.default_rng`).

    Returns:
        ``{"diff", "ci_low", "ci_high", "questions"}``.

    Raises:
        ValueError: The two conditions share no question.
    """
    questions = sorted(set(baseline) & set(other))
    if not questions:
        raise ValueError("the baseline and the compared condition share no test question")
    differences = np.array([other[q] - baseline[q] for q in questions])
    rng = np.random.default_rng(seed)
    picks = rng.integers(0, len(questions), size=(resamples, len(questions)))
    means = differences[picks].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return {
        "diff": float(differences.mean()),
        "ci_low": float(low),
        "ci_high": float(high),
        "questions": len(questions),
    }


def parse_baseline(text: str) -> tuple[str, str]:
    """``retriever=none`` as ``("retriever", "none")``."""
    axis, sep, value = text.partition("=")
    if not sep or not axis or not value:
        from lamp_pl.studygrid.axes import GridAxisError

        raise GridAxisError(f"--baseline {text!r}: expected AXIS=VALUE, e.g. retriever=none")
    return axis, value


def baseline_of(values: tuple[tuple[str, str], ...], axis: str, value: str) -> tuple[tuple[str, str], ...]:
    """The baseline condition of `values`: the same with `axis` set to `value`."""
    return tuple((a, value if a == axis else v) for a, v in values)


__all__ = [
    "baseline_of",
    "condition",
    "mean_std",
    "paired_bootstrap",
    "parse_baseline",
    "question_scores",
    "seed_mean",
    "split_golds",
]
