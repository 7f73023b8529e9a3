"""The served family: the prompts lamp_pl builds, answered by an LLM behind an OpenAI-compatible server.

Nothing is loaded into the process: the data module builds, budgets and tokenizes the prompts as
for any family (same tasks, retrievers, budget and study options), and this family sends each
prompt's *text* to the endpoint of `model.served` (`lamp_pl.served.complete_all`). At the start
of an evaluation epoch every prompt of the epoch's batches is sent at once (bounded by
`max_concurrency`), so the server sees as many requests in flight as it is allowed; each batch
then reads its answers. Answers go to the run folder's response cache as they arrive, so a rerun
sends only what is still unanswered.

The text sent is what a local model of the same tokenizer reads, token for token: a prompt longer
than `data.max_input_length` tokens is cut there for a local model, so it is cut there for the
server, at the end of the last token kept (`lamp_pl.served.cut`), and checked by re-tokenizing it.
Where no text can re-tokenize so (a cut inside one character's byte-fallback pieces), it is cut at
the nearest earlier token boundary that does, and one warning per epoch says how many tokens that
dropped. Tokens and cost are counted per request sent, never per question
(`lamp_pl.served.usage`).
"""

from __future__ import annotations

import itertools
import json
import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import torch

from lamp_pl.models.base import FamilyBase
from lamp_pl.prompts import count_tokens
from lamp_pl.served import Completion, ResponseCache, ServedError, ServedSettings, Usage, complete_all
from lamp_pl.served.client import split_prompts
from lamp_pl.served.cut import Cut, cut_text

CACHE_NAME = "served_responses"
logger = logging.getLogger(__name__)


@dataclass
class ServedFamily(FamilyBase):
    """A generator behind a server: evaluation only; `fit` is refused."""

    served: ServedSettings | dict[str, Any] | None = None
    answers: dict[str, Completion] = field(default_factory=dict)
    run_usage: Usage = field(default_factory=Usage)
    """What this epoch's requests cost (`start_epoch` starts it anew)."""

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

    def prompt_cuts(self, batch: dict) -> dict[str, Cut]:
        """Question id -> the text a local model would read: the prompt, or, where the data module
        cut it at `max_input_length` tokens, the text that re-tokenizes to the ids kept."""
        lengths = batch["attention_mask"].sum(1).tolist()
        rows = zip(batch["ids"], batch["prompts"], batch["input_ids"], lengths)
        return {qid: cut_text(self.tokenizer, prompt, ids[:n].tolist()) for qid, prompt, ids, n in rows}

    def epoch_prompts(self, trainer: Any, stage: str) -> dict[str, str]:
        """Question id -> prompt text of every batch this rank evaluates in `stage` (one warning
        when some texts cannot carry every token a local model reads)."""
        loaders = getattr(trainer, f"{stage}_dataloaders")
        loaders = loaders if isinstance(loaders, list | tuple) else [loaders]
        limits = getattr(trainer, f"num_{stage}_batches", None) or [math.inf] * len(loaders)
        cuts: dict[str, Cut] = {}
        for loader, limit in zip(loaders, limits):
            batches = loader if limit == math.inf else itertools.islice(loader, int(limit))
            for batch in batches:
                cuts.update(self.prompt_cuts(batch))
        warn_about_cuts(cuts)
        return {qid: cut.text for qid, cut in cuts.items()}

    def plan(self, prompts: dict[str, str], cache: Path | None) -> dict[str, Any]:
        """What a run would send: questions, duplicate prompts, cached answers, requests (distinct
        prompts not cached) and their prompt tokens and cost."""
        _, todo, usage = split_prompts(
            self.settings, prompts, ResponseCache(cache if cache and cache.exists() else None)
        )
        return usage.plan(self.settings, sum(count_tokens(self.tokenizer, p) for _, p in todo.values()))

    def start_epoch(self, trainer: Any, stage: str) -> None:
        """Send every prompt of the epoch (or, with `dry_run`, print the plan and stop)."""
        prompts = self.epoch_prompts(trainer, stage)
        cache = self.cache_path(trainer)
        if self.settings.dry_run:
            print("lamp_pl served plan: " + json.dumps(self.plan(prompts, cache)))
            raise SystemExit(0)
        progress = bool(getattr(trainer, "enable_progress_bar", True)) and trainer.is_global_zero
        self.answers, self.run_usage = {}, Usage()
        self._complete(prompts, cache, progress)

    def _complete(self, prompts: dict[str, str], cache: Path | None, progress: bool) -> None:
        answers = complete_all(
            self.settings, prompts, cache, progress=progress, count=lambda text: count_tokens(self.tokenizer, text)
        )
        self.answers.update(answers)
        self.run_usage += answers.usage

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        missing = [i for i in batch["ids"] if i not in self.answers]
        if missing:  # a loop that skipped `start_epoch` (or batches it did not see)
            cuts = self.prompt_cuts(batch)
            warn_about_cuts({i: cuts[i] for i in missing})
            self._complete({i: cuts[i].text for i in missing}, None, progress=False)
        return [self.answers[i].text.strip() for i in batch["ids"]]

    def usage(self) -> dict[str, float]:
        """The `served_*` counts of this epoch's requests for the metrics file (see `Usage.metrics`)."""
        return self.run_usage.metrics(self.settings)


def warn_about_cuts(cuts: dict[str, Cut]) -> None:
    """One warning for the prompts whose text carries fewer tokens than a local model reads."""
    shorter = {qid: cut.dropped for qid, cut in cuts.items() if cut.dropped}
    unsure = [qid for qid, cut in cuts.items() if not cut.exact]
    parts = []
    if shorter:
        first = next(iter(shorter))
        parts.append(
            f"{len(shorter)} of {len(cuts)} prompts end {sum(shorter.values())} tokens earlier in all than a "
            f"local model's (no text ends where the local model's were cut, e.g. inside one character's byte "
            f"pieces; question {first}: {shorter[first]} tokens)"
        )
    if unsure:
        parts.append(f"{len(unsure)} of {len(cuts)} do not re-tokenize to a local model's ids (question {unsure[0]})")
    if parts:
        logger.warning("served: %s", "; ".join(parts))
