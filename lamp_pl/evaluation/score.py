"""Scoring a predictions file (`lamp-pl evaluate`): any system's predictions against LaMP golds, as the official
``eval_task.py`` does, with the same metric classes as ``lamp-pl test``.

Both files are in LaMP's outputs format, ``{"task": "LaMP_N", "golds": [{"id": ..., "output": ...}]}``
(what ``lamp-pl test``/``predict`` write as ``predictions_<split>.json``). Every gold id must have
exactly one prediction and every prediction a gold: the error lists the missing and the extra ids
and names the file.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from lamp_pl.data.lamp import LaMPDataError
from lamp_pl.errors import MissingDataError
from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.tasks import Task

_SHOWN_IDS = 10  # ids listed in an error before "... and N more"


def read_outputs(path: str | Path, task: Task) -> dict[str, str]:
    """Id -> output of a LaMP outputs (or predictions) file, in file order.

    Raises:
        LaMPDataError: Unreadable JSON, a wrong layout or task name, a record without a string id or
            output, or a duplicate id; the message names the file, the record and the field.
    """
    path = Path(path)
    if not path.is_file():
        raise MissingDataError(f"{path}: no such file" if not path.is_dir() else f"{path}: is a folder, not a file")
    try:
        document: Any = json.loads(path.read_bytes().decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise LaMPDataError(
            path, f"not UTF-8 text ({error.reason} at byte {error.start}); save the file as UTF-8"
        ) from None
    except json.JSONDecodeError as error:
        raise LaMPDataError(path, f"malformed JSON: {error}") from None
    if not isinstance(document, dict) or not isinstance(document.get("golds"), list):
        raise LaMPDataError(path, 'expected {"task": ..., "golds": [{"id": ..., "output": ...}]}', field="golds")
    if "task" not in document:
        raise LaMPDataError(path, f'missing: the file must name its task ("task": "{task.name}")', field="task")
    if document["task"] not in task.accepted_output_names:
        raise LaMPDataError(path, f"the file is for task {document['task']!r}, not {task.name!r}", field="task")
    outputs: dict[str, str] = {}
    for index, record in enumerate(document["golds"]):
        if not isinstance(record, dict):
            raise LaMPDataError(path, "expected an object", index)
        for field in ("id", "output"):
            if not isinstance(record.get(field), str):
                raise LaMPDataError(path, "missing or not a string", index, record.get("id"), field)
        if record["id"] in outputs:
            raise LaMPDataError(path, "duplicate id", index, record["id"], "id")
        outputs[record["id"]] = record["output"]
    return outputs


def _listed(ids: list[str]) -> str:
    shown = ", ".join(repr(i) for i in ids[:_SHOWN_IDS])
    return shown + (f" ... and {len(ids) - _SHOWN_IDS} more" if len(ids) > _SHOWN_IDS else "")


def score_predictions(
    task: Task,
    golds: Path | None,
    preds: Path | None,
    judge: dict[str, Any] | None = None,
    split: str = "dev",
    dataset: str = "",
    cache_dir: Path = Path("indexes"),
    out: Path | None = None,
) -> dict[str, Any]:
    """The official metrics of a predictions file against its golds, or with `judge` (the
    endpoint's `base_url`, `model` and `api_key_env`) a LaMP-QA file's judged score (`lamp-pl
    evaluate`, `lamp_pl.cli.evaluate.evaluate`, documents each argument).

    Returns:
        Metric name -> value, as ``lamp-pl test`` computes them (without its ``test/`` prefix); with
        a judge, its score and counts, the judge model and the metrics file written.

    Raises:
        LaMPDataError: A malformed file, or ids that are not the same in both files (the missing and
            the extra ids are listed).
    """
    if preds is None:
        raise LaMPDataError("--preds", "the predictions file is required", field="preds")
    if judge is not None:
        from lamp_pl.evaluation.judge_run import run_judge

        return run_judge(task, preds, read_outputs(preds, task), judge, split, dataset, cache_dir, out)
    if golds is None:
        raise LaMPDataError(
            "--golds", "the gold outputs file is required (or --judge_model for LaMP-QA)", field="golds"
        )
    spec = task
    gold = read_outputs(golds, spec)
    predicted = read_outputs(preds, spec)
    missing = [i for i in gold if i not in predicted]
    extra = [i for i in predicted if i not in gold]
    if missing or extra:
        problems = []
        if missing:
            problems.append(f"{len(missing)} gold id(s) have no prediction: {_listed(missing)}")
        if extra:
            problems.append(f"{len(extra)} id(s) are not in the golds ({golds}): {_listed(extra)}")
        raise LaMPDataError(preds, "; ".join(problems), field="id")
    metric = build_metrics(spec.metric_kind, spec.labels)
    if gold:
        metric.update([predicted[i] for i in gold], list(gold.values()))
    return {name: float(value) for name, value in metric.compute().items()}


__all__ = ["read_outputs", "score_predictions"]
