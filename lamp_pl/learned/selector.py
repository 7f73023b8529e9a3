"""RSPG: a selector that picks, per question, which retriever of a pool builds its prompt.

A small Hugging Face encoder (mean-pooled) with a linear scoring head scores each retriever:
``pre`` reads the input alone (one head row per retriever); ``post`` reads, for each retriever,
the input followed by that retriever's retrieved item texts and scores it with that retriever's
head row. Training distils per-retriever utilities (`score_retrievers`): the target is the
softmax of a question's utilities divided by `temperature`, the loss KL(target || softmax of the
scores). At test time the argmax is each question's choice, written as a choices file that
``retrieval.retriever: selected`` reads (`lamp_pl.retrieval.selected`).
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Any, Literal

import lightning as L
import torch
from torch.utils.data import DataLoader

from lamp_pl.learned.distill import quiet_trainer
from lamp_pl.learned.retriever_module import kl_to_target
from lamp_pl.lightning.optim import adamw_with_linear_warmup
from lamp_pl.lightning.settings import SELECTOR_TRAINING, TrainSettings
from lamp_pl.retrieval.encoder import mean_pooling

SEPARATOR = " | "


def selector_target(utilities: torch.Tensor, temperature: float) -> torch.Tensor:
    """The distillation target: softmax over retrievers of utilities / temperature."""
    return torch.softmax(utilities / temperature, dim=-1)


def question_text(record: dict, reads: str = "input") -> str:
    """The question's text a selector reads: its whole input, or the task's retrieval query."""
    if reads == "input":
        return record["input"]
    if record.get("query") is None:
        raise ValueError(
            f"question {record.get('id')!r} has no 'query' (utilities written before selectors could read "
            "the query): run score-retrievers again, or fit with --reads input"
        )
    return record["query"]


def selector_texts(record: dict, pool: list[str], mode: str, reads: str = "input") -> list[str]:
    """What the selector reads of a question: its text (pre) or, per retriever, the text followed
    by that retriever's item texts (post). The text is the whole input or, with ``reads="query"``,
    the task's retrieval query (the input less the instruction every question shares)."""
    text = question_text(record, reads)
    if mode == "pre":
        return [text]
    return [SEPARATOR.join([text, *record["items"][name]]) for name in pool]


class SelectorModule(L.LightningModule):
    """Encoder + scoring head over a pool of retrievers, distilled from their utilities (RSPG)."""

    def __init__(
        self,
        encoder: str,
        pool: list[str],
        mode: Literal["pre", "post"] = "pre",
        temperature: float = 1.0,
        training: TrainSettings | dict | None = None,
        max_length: int = 256,
        reads: Literal["input", "query"] = "input",
    ) -> None:
        """
        Args:
            encoder: Hub name or local folder of the encoder.
            pool: The retrievers' names, in the head's order.
            mode: ``pre`` (input alone) or ``post`` (input plus each retriever's items).
            temperature: Divides the utilities before their softmax (the target).
            training: The learning rate, weight decay and warm-up of AdamW (linear warm-up then
                decay); None = `SELECTOR_TRAINING`.
            max_length: Truncation of the selector's texts.
            reads: ``input`` (the question's whole input) or ``query`` (the task's retrieval
                query: on LaMP-2 the description without the instruction and tag list every
                question repeats, a tenth of the tokens).
        """
        super().__init__()
        if mode not in ("pre", "post"):
            raise ValueError(f"selector mode must be 'pre' or 'post', got {mode!r}")
        if reads not in ("input", "query"):
            raise ValueError(f"selector reads must be 'input' or 'query', got {reads!r}")
        self.reads = reads
        self.settings = TrainSettings.of(training or SELECTOR_TRAINING)
        training = self.settings.as_dict()  # save_hyperparameters reads this frame: plain values
        self.save_hyperparameters()
        self.pool, self.mode, self.temperature, self.max_length = list(pool), mode, temperature, max_length
        from transformers import AutoModel, AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(encoder)
        self.encoder = AutoModel.from_pretrained(encoder).train()  # from_pretrained returns eval mode
        self.head = torch.nn.Linear(self.encoder.config.hidden_size, len(pool))

    def embed(self, texts: list[str]) -> torch.Tensor:
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.max_length, return_tensors="pt"
        ).to(self.device)
        out = self.encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        return mean_pooling(out.last_hidden_state.float(), tokens["attention_mask"])

    def scores(self, texts: list[list[str]]) -> torch.Tensor:
        """(questions, retrievers) scores of each question's `selector_texts`."""
        flat = self.embed([t for row in texts for t in row])
        if self.mode == "pre":
            return self.head(flat)
        hidden = flat.view(len(texts), len(self.pool), -1)
        return (hidden * self.head.weight).sum(-1) + self.head.bias

    def loss(self, batch: dict) -> torch.Tensor:
        scores = self.scores(batch["texts"])
        target = selector_target(batch["utilities"], self.temperature)
        return kl_to_target(scores, target, torch.ones_like(target, dtype=torch.bool))

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self.loss(batch)
        self.log("train/kl", loss, prog_bar=True, batch_size=len(batch["texts"]))
        return loss

    def configure_optimizers(self):
        return adamw_with_linear_warmup(self.named_parameters(), self.settings, self.trainer.estimated_stepping_batches)

    @torch.no_grad()
    def choose(self, records: list[dict], batch_size: int = 32) -> dict[str, str]:
        """Question id -> the retriever with the highest score."""
        self.eval()
        pool, chosen = self.pool, {}
        for start in range(0, len(records), batch_size):
            part = records[start : start + batch_size]
            texts = [selector_texts(r, pool, self.mode, self.reads) for r in part]
            best = self.scores(texts).argmax(-1).tolist()
            chosen.update({r["id"]: pool[b] for r, b in zip(part, best)})
        return chosen


def selector_batches(records: list[dict], pool: list[str], mode: str, metric: str, reads: str = "input") -> list[dict]:
    """Training rows: the selector's texts and the utilities in pool order."""
    return [
        {"texts": selector_texts(r, pool, mode, reads), "utilities": [float(r["utilities"][n][metric]) for n in pool]}
        for r in records
    ]


def _collate(rows: list[dict]) -> dict:
    return {"texts": [r["texts"] for r in rows], "utilities": torch.tensor([r["utilities"] for r in rows])}


def train_selector(
    records: list[dict],
    encoder: str,
    out_dir: str | Path,
    training: TrainSettings = SELECTOR_TRAINING,
    *,
    mode: Literal["pre", "post"] = "pre",
    metric: str = "metric",
    temperature: float = 1.0,
    max_length: int = 256,
    reads: Literal["input", "query"] = "input",
    trainer: dict[str, Any] | None = None,
) -> SelectorModule:
    """Train an RSPG selector on `load_retriever_utilities` records; save ``<out_dir>/selector.ckpt``
    (`lamp-pl fit-selector`, `lamp_pl.cli.rspg.fit_selector`, documents each argument).

    Args:
        records: Per-retriever utilities of the training questions (pool = their retrievers).
        training: Learning rate, weight decay, warm-up, questions per step, passes and the seed
            of the initialisation and the batch order.
        metric: ``metric`` or ``log_likelihood``: which utility is distilled.
        mode, temperature, max_length, reads: see `SelectorModule`.
        trainer: Extra `lightning.Trainer` arguments.
    """
    seed = training.seed
    L.seed_everything(seed, workers=True, verbose=False)
    pool = sorted(records[0]["utilities"])
    module = SelectorModule(encoder, pool, mode, temperature, training, max_length=max_length, reads=reads)
    rows = selector_batches(records, pool, mode, metric, reads)
    generator = torch.Generator().manual_seed(seed)
    loader: DataLoader = DataLoader(
        rows,  # type: ignore[arg-type]  # a list is a map-style dataset
        batch_size=training.batch_size,
        shuffle=True,
        collate_fn=_collate,
        generator=generator,
    )
    fitter = quiet_trainer(out_dir, training.epochs, trainer, enable_progress_bar=False)
    fitter.fit(module, train_dataloaders=loader)
    fitter.save_checkpoint(Path(out_dir) / "selector.ckpt")
    return module


def selection_records(datamodule, pool: dict[str, dict], split: str) -> list[dict]:
    """What the selector reads of each question of `split`: ``id``, ``input``, ``query`` (the
    task's retrieval query) and ``items`` (retriever -> its retrieved item texts), from each
    member's retrieval cache."""
    from lamp_pl.data.lamp import load_split
    from lamp_pl.learned.utilities import pool_views

    dm = datamodule
    dm.write_synthetic_data()
    questions = load_split(dm.data_dir, dm.task, split)
    items: dict[str, list[list[str]]] = {}
    for name, view in pool_views(dm, split, pool).items():
        if view.config.retriever == "none" or dm.k == 0:
            items[name] = [[] for _ in questions]
            continue
        view.prepare(progress=False)
        items[name] = [[dm.task.item_text(i) for i in r.items] for r in view.retrieved()]
    return [
        {"id": q.id, "input": q.input, "query": dm.task.query(q.input), "items": {n: items[n][j] for n in items}}
        for j, q in enumerate(questions)
    ]


def select_retrievers(
    module: SelectorModule, datamodule, pool: dict[str, dict], split: str | list[str] | None, out: str | Path
) -> Path:
    """Write the choices file of one or more splits (each question's argmax retriever) for
    ``retriever: selected``. `fit` and `test` need a choice for every question of every split
    the data section names, which is what ``split=None`` gives (the splits that have files)."""
    from lamp_pl.data.lamp import split_files
    from lamp_pl.retrieval.selected import write_choices

    if sorted(pool) != module.pool:
        raise ValueError(f"the pool {sorted(pool)} differs from the selector's {module.pool}")
    if split is None:
        datamodule.write_synthetic_data()
        splits = []
        for name in datamodule.splits_for(None):
            with contextlib.suppress(FileNotFoundError):
                split_files(datamodule.data_dir, datamodule.task, name)
                splits.append(name)
    else:
        splits = [split] if isinstance(split, str) else list(split)
    choices: dict[str, str] = {}
    for name in splits:
        choices.update(module.choose(selection_records(datamodule, pool, name)))
    return write_choices(out, pool, choices, {"mode": module.mode, "splits": splits})


__all__ = [
    "SelectorModule",
    "select_retrievers",
    "selection_records",
    "selector_batches",
    "selector_target",
    "question_text",
    "selector_texts",
    "train_selector",
]
