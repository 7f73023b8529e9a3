"""What a served run asked and paid for, counted per request sent, never per question.

Questions whose prompts are the same text share one request (`duplicates`); a prompt already in the
response cache is answered from it (`cached`) and costs nothing; only the requests sent in this run
(`requests`) count tokens, from the server's `usage` field, or counted with the data's tokenizer when
the server gives none (`estimated`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

from lamp_pl.served.settings import Completion, ServedSettings


@dataclass
class Usage:
    """The counts of one run of requests (or the sum of several: `+=`)."""

    questions: int = 0
    """Questions asked (one prompt each)."""
    duplicates: int = 0
    """Questions whose prompt text another question of the run already has: answered by that one's answer."""
    cached: int = 0
    """Distinct prompts answered from the response cache (no request, no cost)."""
    requests: int = 0
    """Distinct prompts sent to the server in this run (answered or not)."""
    unanswered: int = 0
    """Of those, prompts still unanswered after their retries."""
    tries: int = 0
    """HTTP requests made, retries included."""
    prompt_tokens: int = 0
    """Prompt tokens of the requests answered in this run."""
    completion_tokens: int = 0
    """Completion tokens of the requests answered in this run."""
    estimated: int = 0
    """Answered requests whose server gave no `usage`: their tokens were counted with the data's tokenizer."""

    def __iadd__(self, other: Usage) -> Usage:
        for name in (f.name for f in dataclasses.fields(self)):
            setattr(self, name, getattr(self, name) + getattr(other, name))
        return self

    def add_answer(self, completion: Completion) -> None:
        """Count the tokens of one request answered in this run."""
        self.prompt_tokens += completion.prompt_tokens
        self.completion_tokens += completion.completion_tokens

    def plan(self, settings: ServedSettings, prompt_tokens: int) -> dict[str, Any]:
        """The dry run's line: what a run would send (`prompt_tokens`: of the prompts to send)."""
        return {
            "questions": self.questions,
            "duplicates": self.duplicates,
            "cached": self.cached,
            "requests": self.requests,
            "prompt_tokens": prompt_tokens,
            "max_completion_tokens": self.requests * settings.max_new_tokens,
            "prompt_cost": settings.cost(prompt_tokens, 0),
        }

    def metrics(self, settings: ServedSettings) -> dict[str, float]:
        """The `served_*` values of the metrics file (the cost at the settings' prices)."""
        return {
            "served_questions": float(self.questions),
            "served_duplicates": float(self.duplicates),
            "served_cached": float(self.cached),
            "served_requests": float(self.requests),
            "served_tries": float(self.tries),
            "served_unanswered": float(self.unanswered),
            "served_prompt_tokens": float(self.prompt_tokens),
            "served_completion_tokens": float(self.completion_tokens),
            "served_tokens_estimated": float(self.estimated),
            "served_cost": settings.cost(self.prompt_tokens, self.completion_tokens),
        }


class Answers(dict[str, Completion]):
    """The completion of every question id (a plain mapping), with the run's `usage`."""

    def __init__(self, answers: dict[str, Completion], usage: Usage) -> None:
        super().__init__(answers)
        self.usage = usage
