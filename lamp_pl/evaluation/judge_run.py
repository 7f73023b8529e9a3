"""`lamp-pl evaluate` on a LaMP-QA task with a judge model: the benchmark's LLM-judged score.

The questions' narratives and rubric aspects come from the task's dataset (the same `data.source`
as training: the hub dataset, or a local copy), read through `lamp_pl.data.hub`; the responses
from a predictions file in LaMP's format (what `lamp-pl predict` writes). The judge's answers are
cached beside the metrics file, so an interrupted run resumes where it stopped.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lamp_pl.cache import write_text_atomic
from lamp_pl.data.hub import DatasetSource, materialize
from lamp_pl.data.lamp import LaMPDataError
from lamp_pl.errors import MissingDataError
from lamp_pl.evaluation.judge import Complete, judge, judge_info, served_complete
from lamp_pl.tasks import Task
from lamp_pl.tasks.longform import source_of


def judge_records(spec: Task, split: str, source: DatasetSource, cache_dir: str | Path) -> list[dict[str, Any]]:
    """The LaMP-QA questions of a split with their narratives and rubric aspects.

    Raises:
        MissingDataError: the task has no judge fields, or the dataset lacks the split.
    """
    hub = source_of(spec.name)
    if hub is None or not hub.judge_fields:
        raise MissingDataError(f"task {spec.name} has no LLM judge (LaMP-QA tasks do); score it without --judge_model")
    path = materialize(source, spec, cache_dir) / f"{split}_judge.json"
    if not path.is_file():
        raise MissingDataError(f"{path}: the dataset has no {split!r} split for {spec.name}")
    return json.loads(path.read_text(encoding="utf-8"))


def _listed(ids: list[str], shown: int = 10) -> str:
    return ", ".join(repr(i) for i in ids[:shown]) + (f" ... and {len(ids) - shown} more" if len(ids) > shown else "")


def evaluate_judged(
    task: Task,
    preds: Path,
    predicted: dict[str, str],
    records: list[dict[str, Any]],
    complete: Complete,
    info: dict[str, Any],
    out: Path,
    max_rounds: int = 10,
) -> dict[str, Any]:
    """Judge every record's prediction and write the metrics file `out` (atomically).

    Args:
        preds: The predictions file (named in the metrics file and in errors).
        predicted: Its question id -> response.

    Raises:
        LaMPDataError: predictions missing for some questions, or for questions not in the split.
    """
    ids = [r["id"] for r in records]
    missing = [i for i in ids if i not in predicted]
    extra = sorted(set(predicted) - set(ids))
    if missing or extra:
        problems = [f"{len(missing)} question(s) have no prediction: {_listed(missing)}"] if missing else []
        problems += [f"{len(extra)} id(s) are not questions of the split: {_listed(extra)}"] if extra else []
        raise LaMPDataError(preds, "; ".join(problems), field="id")
    result = judge(records, predicted, complete, max_rounds)
    document = {"task": task.name, "predictions": str(preds), **result, "judge": info}
    out.parent.mkdir(parents=True, exist_ok=True)
    write_text_atomic(out, json.dumps(document, indent=1))
    return {k: document[k] for k in ("score", "questions", "aspects", "unparsed")} | {
        "judge_model": info.get("model"),
        "metrics_file": str(out),
    }


def run_judge(
    task: Task,
    preds: Path,
    predicted: dict[str, str],
    settings: dict[str, Any],
    split: str = "dev",
    dataset: str = "",
    cache_dir: Path = Path("indexes"),
    out: Path | None = None,
    max_rounds: int = 10,
) -> dict[str, Any]:
    """`lamp-pl evaluate --judge_model M`: the judged score of a LaMP-QA predictions file; the
    metrics file (default ``metrics_judge_<split>.json`` beside the predictions) names the judge
    model and prompts; the judge's answers go to ``<metrics file>.responses.jsonl`` (resumable)."""
    out = out or Path(preds).with_name(f"metrics_judge_{split}.json")
    records = judge_records(task, split, DatasetSource(dataset), cache_dir)
    complete = served_complete(settings, out.with_name(out.name + ".responses.jsonl"))
    return evaluate_judged(task, Path(preds), predicted, records, complete, judge_info(settings), out, max_rounds)


__all__ = ["evaluate_judged", "judge_records", "run_judge"]
