"""What `bench/vs_official.py` checks between the official scripts' outputs and lamp_pl's.

Ranked lists (whole profiles, in order), prompts, predictions and metrics, each keyed by question
id. Every function returns a short phrase for the table and a dict for the JSON summary; the first
few differences are named (question id and what differs), since deterministic rules must agree.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

SHOWN = 3


def _count(pairs: dict[str, tuple[Any, Any]], what: str) -> tuple[str, dict]:
    """`what identical n/m` and the first differing ids."""
    differ = [qid for qid, (a, b) in pairs.items() if a != b]
    same = len(pairs) - len(differ)
    phrase = f"{what} identical {same}/{len(pairs)}"
    return phrase, {"identical": same, "total": len(pairs), "differ": differ[:SHOWN]}


def lamp_pl_data(config: Path, overrides: list[str] | None = None) -> Any:
    """The `LaMPData` of a bench config (its caches already built by `lamp-pl index`)."""
    from lamp_pl.cli.config import datamodule_from_config

    return datamodule_from_config([config], overrides)


def _tie_blocks(ids: list[str], scores: list[float]) -> list[frozenset[str]]:
    """The ranked ids cut into runs of exactly equal scores."""
    blocks: list[set[str]] = []
    for at, (item, score) in enumerate(zip(ids, scores)):
        if at and score == scores[at - 1]:
            blocks[-1].add(item)
        else:
            blocks.append({item})
    return [frozenset(b) for b in blocks]


def ranked_lists(official: dict[str, list[str]], data: Any, splits: list[str], official_numpy: str) -> tuple[str, dict]:
    """Whole ranked profiles: the official `rank_profiles.py` files against lamp_pl's cache.

    A list that differs is also checked block by block of exactly tied lamp_pl scores: when every
    block holds the same items, the lists differ only in how ties are ordered.
    """
    import numpy

    pairs: dict[str, tuple[Any, Any]] = {}
    scores: dict[str, list[float]] = {}
    for split in splits:
        for got in data.view(split).top(10**9).retrieved():
            pairs[got.question_id] = (official.get(got.question_id), list(got.item_ids))
            scores[got.question_id] = list(got.scores)
    phrase, detail = _count(pairs, "ranked lists")
    differ = [qid for qid, (a, b) in pairs.items() if a != b]
    ties_only = [
        qid
        for qid in differ
        if pairs[qid][0] is not None
        and len(pairs[qid][0]) == len(pairs[qid][1])
        and _tie_blocks(pairs[qid][0], scores[qid]) == _tie_blocks(pairs[qid][1], scores[qid])
    ]
    if ties_only:
        phrase += (
            f"; {len(ties_only)} differ only in the order of exactly tied scores"
            f" (np.argsort's tie order: numpy {official_numpy} official, {numpy.__version__} lamp_pl)"
        )
    detail["ties_only"] = len(ties_only)
    for qid in detail["differ"]:
        theirs, ours = pairs[qid]
        at = next((i for i, (a, b) in enumerate(zip(theirs or [], ours)) if a != b), None)
        if at is None:
            detail[qid] = f"lengths {len(theirs or [])} vs {len(ours)}"
            continue
        near = scores[qid][at : at + 2]
        detail[qid] = f"rank {at}: official {theirs[at]}, lamp_pl {ours[at]} (lamp_pl scores there {near})"
    return phrase, detail


def prompts(official: dict[str, str], data: Any, split: str) -> tuple[str, dict]:
    """Prompts of one split: the official dataset's `source` column against lamp_pl's prompts."""
    from lamp_pl.data.lamp import load_split

    questions = load_split(data.data_dir, data.task, split)
    ours = data.prompts(split)
    pairs = {q.id: (official.get(q.id), prompt) for q, prompt in zip(questions, ours)}
    phrase, detail = _count(pairs, f"{split} prompts")
    for qid in detail["differ"]:
        theirs, mine = pairs[qid]
        at = next((i for i, (a, b) in enumerate(zip(theirs or "", mine)) if a != b), min(len(theirs or ""), len(mine)))
        detail[qid] = {
            "official": (theirs or "")[max(0, at - 40) : at + 40],
            "lamp_pl": mine[max(0, at - 40) : at + 40],
        }
    return phrase, detail


def predictions(official_ids: list[str], official_preds: list[str], lamp_pl_file: Path) -> tuple[str, dict]:
    """Test predictions of the same model: official (decoded, stripped) against lamp_pl's file."""
    golds = json.loads(lamp_pl_file.read_text())["golds"]
    ours = {g["id"]: g["output"].strip() for g in golds}
    pairs = {qid: (pred, ours.get(qid)) for qid, pred in zip(official_ids, official_preds)}
    phrase, detail = _count(pairs, "predictions")
    for qid in detail["differ"]:
        detail[qid] = {"official": pairs[qid][0], "lamp_pl": pairs[qid][1]}
    return phrase, detail


def _normalise(metrics: dict[str, Any]) -> dict[str, float]:
    out = {}
    for key, value in metrics.items():
        name = key.split("/")[-1].lower()
        name = name[len("eval_") :] if name.startswith("eval_") else name
        if isinstance(value, int | float) and not isinstance(value, bool):
            out[name] = float(value)
    return out


def metrics(official: dict[str, Any], ours: dict[str, Any], rouge_means: dict[str, float] | None) -> tuple[str, dict]:
    """The task's metrics both sides report. ROUGE: the official script reports `evaluate`'s
    bootstrap `mid`; the exact mean of its predictions (recorded by the runner) is compared too."""
    theirs, mine = _normalise(official), _normalise(ours)
    if rouge_means:
        theirs.update({f"{k.replace('rouge', 'rouge-').lower()} (mean)": v for k, v in rouge_means.items()})
        for name in ("rouge-1", "rouge-l"):
            if name in mine:
                mine[f"{name} (mean)"] = mine[name]
    common = [k for k in mine if k in theirs and k not in ("loss", "runtime")]
    detail = {k: {"official": theirs[k], "lamp_pl": mine[k]} for k in common}
    parts = []
    for key in common:
        a, b = theirs[key], mine[key]
        mark = "=" if math.isclose(a, b, rel_tol=1e-6, abs_tol=1e-9) else "!="
        parts.append(f"{key} {a:.4f} {mark} {b:.4f}")
    return "; ".join(parts) or "no common metric", detail
