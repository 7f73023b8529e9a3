"""`lamp-pl evaluate`: the official metrics of a predictions file, or a LaMP-QA file's judged score.

A typed function whose docstring is its `--help` (see `lamp_pl.cli.tree`); the task is resolved
here, once, and the work is `lamp_pl.evaluation.score.score_predictions`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any


def evaluate(
    task: str,
    golds: Path | None = None,
    preds: Path | None = None,
    judge_model: str | None = None,
    judge_base_url: str = "http://127.0.0.1:8000/v1",
    judge_api_key_env: str | None = None,
    split: str = "dev",
    dataset: str = "",
    cache_dir: Path = Path(".lamp_cache"),
    out: Path | None = None,
) -> dict[str, Any]:
    """The official metrics of a predictions file (e.g. ``{"accuracy": ..., "f1": ...}`` for LaMP-1).

    Args:
        task: LaMP task name, e.g. ``LaMP_1`` (or a LongLaMP / LaMP-QA task).
        golds: The split's outputs file (gold answers); not used with a judge.
        preds: The predictions file, in the same format.
        judge_model: LaMP-QA: score with the benchmark's LLM judge, this model (as the server names it).
        judge_base_url: The judge's OpenAI-compatible endpoint, ending in ``/v1``.
        judge_api_key_env: Environment variable holding the judge endpoint's API key.
        split: LaMP-QA: the split the predictions answer (``dev`` = the dataset's validation).
        dataset: LaMP-QA: the dataset (hub name or local copy; default: the task's published one).
        cache_dir: Where the dataset's questions are written once (as for training).
        out: The judged metrics file (default: ``metrics_judge_<split>.json`` beside the predictions).

    Returns:
        What `lamp_pl.evaluation.score.score_predictions` returns (printed as JSON).
    """
    from lamp_pl.evaluation.score import score_predictions
    from lamp_pl.tasks import get_task

    judge = None
    if judge_model is not None:
        judge = {"base_url": judge_base_url, "model": judge_model, "api_key_env": judge_api_key_env}
    return score_predictions(get_task(task), golds, preds, judge, split, dataset, cache_dir, out)


__all__ = ["evaluate"]
