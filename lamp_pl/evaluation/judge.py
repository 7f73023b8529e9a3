"""LaMP-QA's LLM judge: each rubric aspect of a question scored 0-2, averaged as the benchmark does.

The benchmark (github.com/LaMP-Benchmark/LaMP-QA, ``evaluation/evaluator.py``) asks a judge LLM,
once per (question, aspect), whether a response addresses that aspect of what the user wanted,
giving it the question, the user's narrative (the detailed description of their need), the
response and the aspect (its title, the reason it matters and the evidence from the narrative);
the judge answers a JSON object with ``match_score`` 0 (not covered), 1 (somewhat) or 2 (well).
A question's score is the sum of its aspects' scores divided by twice their number; the reported
score is the mean over questions. Decoding starts greedy (temperature 0); answers that are not a
valid score are asked again with the temperature raised by 0.1 a round (up to 1.0), and an aspect
still unanswered after `max_rounds` rounds scores 0, as in the benchmark (which allows 100 rounds).

The prompts below are lamp_pl's own wording of the same instructions, inputs and output format
(the benchmark's code carries no license to copy its text); scores are therefore comparable in
protocol but not guaranteed identical to the benchmark's. The metrics file names them, with their
hash and the judge model. The judge is reached through `complete`, a function from prompts (key ->
text) and a temperature to answers; `served_complete` builds it on `lamp_pl.served` (an
OpenAI-compatible endpoint with a checksummed response cache, so a rerun asks only what is missing).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

JUDGE_SYSTEM = """You judge answers to personal questions, carefully and fairly. You receive a user's question, \
the user's own detailed description of what they need, an answer generated for them, and one aspect that \
matters to this user (a title, why it matters to them, and the evidence for it in their description). \
Decide how well the answer addresses that one aspect.

Reply with a JSON object in a ```json``` block and nothing else, with one field:
    - match_score: 0 if the answer does not address the aspect, 1 if it addresses it partly, 2 if it addresses it well.
"""

JUDGE_USER = """question: {question}
description: {narrative}
answer: {response}
aspect:
    - title: {aspect}
    - why it matters: {reason}
    - evidence: {evidence}

Reply with the JSON object in a ```json``` block only.
"""

Complete = Callable[[Mapping[str, str], float], Mapping[str, str]]
"""(prompts by key, temperature) -> answers by key."""


def prompts_digest() -> str:
    """SHA-256 of the two prompt templates (named in the metrics file)."""
    return hashlib.sha256((JUDGE_SYSTEM + "\0" + JUDGE_USER).encode()).hexdigest()


def aspect_prompt(record: Mapping[str, Any], response: str, aspect: Mapping[str, str]) -> str:
    """The user message asking about one aspect of one question's response."""
    return JUDGE_USER.format(
        question=record["question"],
        narrative=record["narrative"],
        response=response,
        aspect=aspect["aspect"],
        reason=aspect["reason"],
        evidence=aspect["evidence"],
    )


_SCORE = re.compile(r'"?match_score"?\s*:\s*"?([0-2](?:\.\d+)?)')


def parse_score(text: str) -> float | None:
    """The ``match_score`` of a judge's answer (a JSON object, fenced or not), or None when there is
    no score between 0 and 2 in it."""
    body = text.replace("```json", "").replace("```", "").strip()
    try:
        value = json.loads(body, strict=False)
        score = value.get("match_score") if isinstance(value, dict) else None
    except json.JSONDecodeError:
        found = _SCORE.search(body)
        score = found.group(1) if found else None
    try:
        number = float(score) if score is not None and not isinstance(score, bool) else None
    except (TypeError, ValueError):
        return None
    return number if number is not None and 0 <= number <= 2 else None


def judge(
    records: Sequence[Mapping[str, Any]],
    responses: Mapping[str, str],
    complete: Complete,
    max_rounds: int = 10,
) -> dict[str, Any]:
    """Score each record's response on each of its rubric aspects.

    Args:
        records: LaMP-QA questions: ``id``, ``question``, ``narrative``, ``rubric_aspects``.
        responses: Question id -> the response to judge (every record needs one).
        complete: The judge LLM (see `Complete`).
        max_rounds: Rounds of asking again for answers without a valid score.

    Returns:
        ``score`` (the benchmark's), ``questions``, ``aspects``, ``unparsed`` (aspects scored 0
        because no round gave a valid answer) and ``per_question`` (id, score, per-aspect scores).
    """
    prompts = {
        f"{record['id']}#{j}": aspect_prompt(record, responses[record["id"]], aspect)
        for record in records
        for j, aspect in enumerate(record["rubric_aspects"])
    }
    scores: dict[str, float] = {}
    todo, temperature = dict(prompts), 0.0
    for _ in range(max_rounds):
        if not todo:
            break
        answers = complete(todo, round(temperature, 1))
        for key in list(todo):
            value = parse_score(answers.get(key, ""))
            if value is not None:
                scores[key] = value
                del todo[key]
        temperature = min(temperature + 0.1, 1.0)
    per_question = []
    for record in records:
        aspects = record["rubric_aspects"]
        details = [
            {"aspect": a["aspect"], "score": scores.get(f"{record['id']}#{j}", 0.0)} for j, a in enumerate(aspects)
        ]
        per_question.append(
            {"id": record["id"], "score": sum(d["score"] for d in details) / (2 * len(aspects)), "details": details}
        )
    return {
        "score": sum(q["score"] for q in per_question) / len(per_question) if per_question else 0.0,
        "questions": len(per_question),
        "aspects": len(prompts),
        "unparsed": len(todo),
        "per_question": per_question,
    }


def served_complete(settings: Any, cache_path: str | Path | None, progress: bool = False) -> Complete:
    """`Complete` on an OpenAI-compatible endpoint (`lamp_pl.served`): chat requests with the judge's
    system prompt, at the round's temperature; every answer is cached, so a rerun resumes."""
    from lamp_pl.served import ServedSettings, complete_all

    base = ServedSettings.from_any(settings)
    base = dataclasses.replace(base, api="chat", system_prompt=JUDGE_SYSTEM)

    def complete(prompts: Mapping[str, str], temperature: float) -> dict[str, str]:
        answers = complete_all(dataclasses.replace(base, temperature=temperature), prompts, cache_path, progress)
        return {key: answer.text for key, answer in answers.items()}

    return complete


def judge_info(settings: Any) -> dict[str, Any]:
    """What the metrics file says about the judge: model, endpoint, prompts and how scores combine."""
    fields = settings if isinstance(settings, Mapping) else dataclasses.asdict(settings)
    return {
        "model": fields.get("model"),
        "base_url": fields.get("base_url"),
        "prompts": {"system": JUDGE_SYSTEM, "user": JUDGE_USER},
        "prompts_sha256": prompts_digest(),
        "scoring": "each aspect 0-2; a question scores sum / (2 x its aspects); the score is the mean over questions",
    }


__all__ = [
    "JUDGE_SYSTEM",
    "JUDGE_USER",
    "Complete",
    "aspect_prompt",
    "judge",
    "judge_info",
    "parse_score",
    "served_complete",
]
