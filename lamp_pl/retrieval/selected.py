"""`retriever: selected`: each question takes the items of the retriever a selector chose for it.

A choices file (JSON, written by `lamp_pl.learned.selector.write_choices`) holds the pool (each
retriever's name and its `RetrievalConfig` overrides, e.g. ``{"retriever": "contriever",
"encoder": "runs/ropg/encoder"}``) and, per question id, the chosen name. With
``retrieval.retriever: selected`` and ``retrieval.selector: <choices file>`` the facade prepares
every pool member's own cache and, per question, returns the chosen member's ranking, so the
selected prompts flow through fit, test and grid like any retriever's. `selection_report` says
how often each retriever was chosen and, given per-retriever utilities, the selector's result
beside each single retriever's and the oracle's (the best retriever per question).
"""

from __future__ import annotations

import dataclasses
import json
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

from lamp_pl.cache import file_sha256, stable_hash, write_text_atomic
from lamp_pl.errors import LaMPError

CHOICES_FORMAT = 1


class ChoicesError(LaMPError, ValueError):
    """A choices file is missing, malformed, or lacks a question."""


def read_choices(path: str | Path | None) -> dict:
    """The choices document at `path`, checked.

    Raises:
        ChoicesError: no path, an unreadable file, or a choice outside the pool.
    """
    if not path:
        raise ChoicesError("retrieval.retriever 'selected' needs retrieval.selector (a choices file)")
    try:
        document = json.loads(Path(path).read_text())
        pool, choices = document["pool"], document["choices"]
    except FileNotFoundError:
        raise ChoicesError(f"{path}: no such choices file (retrieval.selector)") from None
    except (OSError, ValueError, KeyError, TypeError) as error:
        raise ChoicesError(f"{path}: not a choices file ({error!r})") from None
    for qid, name in choices.items():
        if name not in pool:
            raise ChoicesError(f"{path}: question {qid!r} chose {name!r}, which is not in the pool {sorted(pool)}")
    return document


def write_choices(path: str | Path, pool: dict[str, dict], choices: dict[str, str], info: dict | None = None) -> Path:
    """Write a choices document atomically (`pool`: name -> `RetrievalConfig` overrides)."""
    document = {"format": CHOICES_FORMAT, "pool": pool, "choices": choices, "info": info or {}}
    write_text_atomic(Path(path), json.dumps(document, indent=1, sort_keys=True))
    return Path(path)


def member_config(config: Any, overrides: dict) -> Any:
    """`config` with one pool member's overrides (never `selected` itself)."""
    member = dataclasses.replace(config, selector=None, **overrides)
    if member.retriever == "selected":
        raise ChoicesError("a pool member of `selected` cannot itself be `selected`")
    return member


def members(config: Any) -> tuple[dict, dict[str, Any]]:
    """(the choices document, each pool member's config by name)."""
    document = read_choices(config.selector)
    return document, {name: member_config(config, o) for name, o in document["pool"].items()}


def prepare_selected(
    prepare: Callable[..., dict], task: Any, data_dir: Any, splits: Any, config: Any, cache_dir: Any, **kw
) -> dict:
    """Prepare every pool member's cache with `prepare` (`prepare_retrieval`)."""
    _, configs = members(config)
    reports = {name: prepare(task, data_dir, splits, c, cache_dir, **kw) for name, c in configs.items()}
    first = next(iter(reports.values()))
    return {**first, "retriever": "selected", "members": reports, "reused": all(r["reused"] for r in reports.values())}


def load_selected(
    load: Callable[..., list], task: Any, data_dir: Any, split: str, config: Any, cache_dir: Any, k: float, offset: int
) -> list:
    """Each question's items from the retriever chosen for it (`load`: `load_retrieved`).

    Raises:
        ChoicesError: a question of the split has no choice.
    """
    document, configs = members(config)
    choices = document["choices"]
    loaded = {name: load(task, data_dir, split, c, cache_dir, k, offset) for name, c in configs.items()}
    first = next(iter(loaded.values()))
    missing = [r.question_id for r in first if r.question_id not in choices]
    if missing:
        raise ChoicesError(f"{config.selector}: no choice for question {missing[0]!r} of split {split!r}")
    return [loaded[choices[r.question_id]][q] for q, r in enumerate(first)]


def selected_fingerprint(fingerprint: Callable[..., str], task: Any, split: str, config: Any, cache_dir: Any) -> str:
    """A hash of the choices file and each member's results (`fingerprint`: `results_fingerprint`)."""
    _, configs = members(config)
    parts = {name: fingerprint(task, split, c, cache_dir) for name, c in sorted(configs.items())}
    return stable_hash([file_sha256(Path(config.selector)), parts])


def selection_report(choices: dict[str, str], utilities: list[dict], metric: str = "metric") -> dict:
    """How often each retriever was chosen, and the mean utility of the selector's choices beside
    each single retriever's and the oracle's.

    Args:
        choices: question id -> chosen retriever.
        utilities: per-question records with ``id`` and ``utilities`` (retriever -> {metric, ...}).
        metric: which utility to average (``metric`` or ``log_likelihood``).
    """
    rows = [r for r in utilities if r["id"] in choices]
    names = sorted(rows[0]["utilities"]) if rows else []
    n = max(1, len(rows))
    single = {name: sum(r["utilities"][name][metric] for r in rows) / n for name in names}
    oracle = sum(max(r["utilities"][name][metric] for name in names) for r in rows) / n
    chosen = sum(r["utilities"][choices[r["id"]]][metric] for r in rows) / n
    counts = Counter(choices[r["id"]] for r in rows)
    return {
        "questions": len(rows),
        "chosen_share": {name: counts.get(name, 0) / n for name in names},
        "selected": chosen,
        "oracle": oracle,
        "single": single,
    }


__all__ = [
    "ChoicesError",
    "load_selected",
    "member_config",
    "prepare_selected",
    "read_choices",
    "selected_fingerprint",
    "selection_report",
    "write_choices",
]
