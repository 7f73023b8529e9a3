"""The served family: the prompts lamp_pl builds, answered by an LLM behind an OpenAI-compatible server.

Nothing is loaded into the process: the data module builds, budgets and tokenizes the prompts as
for any family (same tasks, retrievers, budget and study options), and this family sends each
prompt's *text* to the endpoint of `model.served` (`lamp_pl.served.complete_all`). At the start
of an evaluation epoch every prompt of the epoch's batches is sent at once (bounded by
`max_concurrency`), so the server sees as many requests in flight as it is allowed; each batch
then reads its answers. Answers go to the run folder's response cache as they arrive, so a rerun
sends only what is still unanswered.
"""

from __future__ import annotations

import itertools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from lamp_pl.models.base import FamilyBase
from lamp_pl.prompts import count_tokens
from lamp_pl.served import Completion, ServedError, ServedSettings, complete_all
from lamp_pl.served.cache import ResponseCache, response_key

CACHE_NAME = "served_responses"


@dataclass
class ServedFamily(FamilyBase):
    """A generator behind a server: evaluation only; `fit` is refused."""

    served: ServedSettings | dict[str, Any] | None = None
    answers: dict[str, Completion] = field(default_factory=dict)

    auto_class_name: ClassVar[str] = ""
    trainable: ClassVar[bool] = False

    def __post_init__(self) -> None:
        if self.served is None:
            raise ServedError("model.family served: add a model.served section (base_url, model, ...)")
        self.served = ServedSettings.from_any(self.served)

    @property
    def settings(self) -> ServedSettings:
        assert isinstance(self.served, ServedSettings)
        return self.served

    def build(self) -> torch.nn.Module:
        """No network in the process: an empty module stands in for it."""
        return torch.nn.Module()

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        raise ServedError("model.family served: a served model cannot be trained; use validate, test or predict")

    @staticmethod
    def cache_path(trainer: Any) -> Path:
        """The response cache in the run folder (one file per rank)."""
        rank = getattr(trainer, "global_rank", 0)
        name = CACHE_NAME + (f".rank{rank}" if rank else "") + ".jsonl"
        return Path(trainer.default_root_dir) / name

    def epoch_prompts(self, trainer: Any, stage: str) -> dict[str, str]:
        """Question id -> prompt text of every batch this rank evaluates in `stage`."""
        loaders = getattr(trainer, f"{stage}_dataloaders")
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        limits = getattr(trainer, f"num_{stage}_batches", None) or [math.inf] * len(loaders)
        prompts: dict[str, str] = {}
        for loader, limit in zip(loaders, limits):
            batches = loader if limit == math.inf else itertools.islice(loader, int(limit))
            for batch in batches:
                prompts.update(zip(batch["ids"], batch["prompts"]))
        return prompts

    def plan(self, prompts: dict[str, str], cache: Path | None) -> dict[str, Any]:
        """What a run would send: requests (prompts not cached), their prompt tokens, what is cached."""
        answered = ResponseCache(cache).answers if cache is not None and cache.exists() else {}
        fields = self.settings.cache_fields()
        todo = {response_key(fields, p): p for p in prompts.values()}
        todo = {k: p for k, p in todo.items() if k not in answered}
        tokens = sum(count_tokens(self.tokenizer, p) for p in todo.values())
        return {
            "questions": len(prompts),
            "cached": len(prompts) - len(todo),
            "requests": len(todo),
            "prompt_tokens": tokens,
            "max_completion_tokens": len(todo) * self.settings.max_new_tokens,
            "prompt_cost": self.settings.cost(tokens, 0),
        }

    def start_epoch(self, trainer: Any, stage: str) -> None:
        """Send every prompt of the epoch (or, with `dry_run`, print the plan and stop)."""
        prompts = self.epoch_prompts(trainer, stage)
        cache = self.cache_path(trainer)
        if self.settings.dry_run:
            print("lamp_pl served plan: " + json.dumps(self.plan(prompts, cache)))
            raise SystemExit(0)
        progress = bool(getattr(trainer, "enable_progress_bar", True)) and trainer.is_global_zero
        self.answers = complete_all(self.settings, prompts, cache, progress=progress)

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        missing = {i: p for i, p in zip(batch["ids"], batch["prompts"]) if i not in self.answers}
        if missing:  # a loop that skipped `start_epoch` (or batches it did not see)
            self.answers.update(complete_all(self.settings, missing, None, progress=False))
        return [self.answers[i].text.strip() for i in batch["ids"]]

    def usage(self, ids: list[str]) -> dict[str, float]:
        """Tokens the server reported for these questions' answers, their cost, and the unanswered."""
        answers = [self.answers[i] for i in ids if i in self.answers]
        prompt = sum(a.prompt_tokens for a in answers)
        completion = sum(a.completion_tokens for a in answers)
        return {
            "served_prompt_tokens": float(prompt),
            "served_completion_tokens": float(completion),
            "served_cost": self.settings.cost(prompt, completion),
            "served_unanswered": float(sum(a.failed for a in answers)),
        }
