"""Reranking: a cross-encoder rescores each question's first-stage top N, keeping the best k_max.

``retrieval.rerank`` names a cross-encoder (hub name or folder): a sentence-transformers
``CrossEncoder`` folder or any sequence-classification model. The first stage (any retriever,
``retrieval.retriever``) is prepared, and cached, with ``k_max = rerank_depth`` (N); then every
(query, item) pair of a split is scored in length-sorted batches (DDP ranks each score a
contiguous shard of the pairs, rank 0 assembles) and the reranked lists, with both stages'
scores, are saved as an ordinary results file keyed by the first stage's settings and the
cross-encoder's. A one-label model's score is its logit, through the folder's declared activation
(sentence-transformers' Sigmoid) when there is one, so scores equal ``CrossEncoder.predict``; a
model with several labels scores by its last label's logit.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from lamp_pl.retrieval.protocol import Ranking, Retriever, SplitView
from lamp_pl.retrieval.retrievers import NoRetriever


class CrossEncoderScorer:
    """Scores (query, text) pairs with a cross-encoder, in length-sorted batches.

    `total_forward_calls` counts forward passes of all instances (a cached rerank makes none).
    """

    total_forward_calls: ClassVar[int] = 0

    def __init__(self, name: str, *, batch_size: int = 32, max_length: int = 512, **load: Any) -> None:
        import torch
        from transformers import AutoModelForSequenceClassification, AutoTokenizer

        from lamp_pl.models.pretrained import load_pretrained
        from lamp_pl.retrieval.encoder import resolve_device, resolve_precision

        self.device = resolve_device(load.get("device", "auto"))
        dtype = resolve_precision(load.get("precision", "auto"), self.device)
        remote = {"revision": load.get("revision"), "trust_remote_code": load.get("trust_remote_code", False)}
        self.tokenizer = AutoTokenizer.from_pretrained(name, **remote)
        model = load_pretrained(AutoModelForSequenceClassification, name, dtype=dtype, **remote)
        self.model = model.to(self.device).eval()
        self.batch_size, self.max_length = batch_size, max_length
        self.sigmoid = "Sigmoid" in str(_declared(name).get("activation_fn", ""))
        self.forward_seconds, self._torch = 0.0, torch

    def score(self, pairs: Sequence[tuple[str, str]]) -> np.ndarray:
        """One float32 score per pair, in the order given (longest batches first)."""
        torch, out = self._torch, np.empty(len(pairs), dtype=np.float32)
        tokens = self.tokenizer(
            [q for q, _ in pairs], [t for _, t in pairs], truncation=True, max_length=self.max_length
        )
        order = np.argsort([-len(ids) for ids in tokens["input_ids"]], kind="stable")
        start = time.perf_counter()
        with torch.inference_mode():
            for b in range(0, len(order), self.batch_size):
                rows = order[b : b + self.batch_size]
                batch = self.tokenizer.pad({k: [v[r] for r in rows] for k, v in tokens.items()}, return_tensors="pt")
                logits = self.model(**{k: v.to(self.device) for k, v in batch.items()}).logits.float()
                scores = torch.sigmoid(logits[:, -1]) if self.sigmoid else logits[:, -1]
                out[rows] = scores.cpu().numpy()
                CrossEncoderScorer.total_forward_calls += 1
        self.forward_seconds += time.perf_counter() - start
        return out


def _declared(name: str) -> dict:
    path = Path(name) / "config_sentence_transformers.json"
    if path.is_file():
        return json.loads(path.read_text())
    if Path(name).is_dir():
        return {}
    try:
        from huggingface_hub import hf_hub_download

        return json.loads(Path(hf_hub_download(name, "config_sentence_transformers.json")).read_text())
    except Exception:  # noqa: BLE001 -- not a sentence-transformers repository, or offline: no activation
        return {}


@dataclass
class RerankedRetriever(NoRetriever):
    """A first-stage retriever whose top `depth` items a cross-encoder reorders.

    `scores` maps (split, question row) to the cross-encoder's scores of the first stage's list
    (filled by `score_splits`); `source` gives the first stage's cached list of a question.
    """

    first: Retriever = field(default_factory=NoRetriever)
    model: str = ""
    depth: int = 50
    batch_size: int = 32
    max_length: int = 512
    load: dict = field(default_factory=dict)
    source: Callable[[SplitView, int], Ranking] | None = field(default=None, repr=False, compare=False)
    scores: dict = field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self) -> None:
        self.name, self.dense = self.first.name, self.first.dense

    def settings(self) -> dict:
        from lamp_pl.retrieval.encoder import folder_fingerprint

        model = {"name": self.model, "fingerprint": folder_fingerprint(self.model), "depth": self.depth}
        model.update(max_length=self.max_length, revision=self.load.get("revision"))
        return {**self.first.settings(), "rerank": model}

    def first_stage(self, view: SplitView, q: int) -> Ranking:
        if self.source:
            return self.source(view, q)
        return self.first.rank(view, q, self.depth if self.depth > 0 else len(view.candidates(q)))

    def rank(self, view: SplitView, q: int, k: int) -> Ranking:
        first = self.first_stage(view, q)
        if (view.split, q) not in self.scores:  # not scored in bulk: score this question alone
            self.scores[view.split, q] = self.scorer().score([(view.query(q), view.text(int(r))) for r in first.items])
        scores = self.scores[view.split, q]
        order = np.argsort(-scores, kind="stable")[:k]
        return Ranking(first.items[order], scores[order], first_scores=first.scores[order])

    def scorer(self) -> CrossEncoderScorer:
        return CrossEncoderScorer(self.model, batch_size=self.batch_size, max_length=self.max_length, **self.load)

    def score_splits(self, views: Sequence[SplitView], rank: int, world_size: int, barrier, folder: Path) -> None:
        """Score every (query, first-stage item) pair of `views`; with several ranks each scores a
        contiguous shard, written beside the results (atomically), and rank 0 reads them all."""
        pairs, owners = [], []
        for view in views:
            for q in range(len(view)):
                first = self.first_stage(view, q)
                pairs += [(view.query(q), view.text(int(r))) for r in first.items]
                owners.append((view.split, q, len(first.items)))
        lo, hi = len(pairs) * rank // world_size, len(pairs) * (rank + 1) // world_size
        shard = folder / f".rerank-shard-{rank}-of-{world_size}.npy"
        mine, error = np.empty(0, dtype=np.float32), None
        try:
            mine = self.scorer().score(pairs[lo:hi]) if hi > lo else mine
            if world_size > 1:
                folder.mkdir(parents=True, exist_ok=True)
                tmp = folder / f".rerank-shard-{rank}-of-{world_size}.{os.getpid()}.tmp.npy"
                np.save(tmp, mine)
                os.replace(tmp, shard)
        except Exception as failure:  # noqa: BLE001 -- re-raised after the barriers, so no rank hangs
            error = failure
        if world_size > 1:
            barrier()
            try:
                if rank == 0 and error is None:
                    shards = [folder / f".rerank-shard-{r}-of-{world_size}.npy" for r in range(world_size)]
                    mine = np.concatenate([np.load(path) for path in shards])
            except Exception as failure:  # noqa: BLE001 -- a rank that failed left no shard
                error = failure
            barrier()
            shard.unlink(missing_ok=True)
        if error is not None:
            raise error
        if rank == 0:
            at = 0
            for split, q, n in owners:
                self.scores[split, q] = mine[at : at + n]
                at += n


def attach_first_stage(retriever: RerankedRetriever, config: Any, open_results: Callable[[str, Any], tuple]) -> None:
    """Make `retriever` read the first stage's cached lists (prepared before);
    `open_results(split, config)` gives a config's (results, index manifest)."""
    loaded: dict[str, Any] = {}

    def source(view: SplitView, q: int) -> Ranking:
        if view.split not in loaded:
            loaded[view.split] = open_results(view.split, first_stage_config(config))[0]
        results = loaded[view.split]
        rows = slice(int(results.offsets[q]), int(results.offsets[q + 1]))
        return Ranking(results.items[rows], results.scores[rows])

    retriever.source = source


def first_stage_config(config: Any) -> Any:
    """The first stage's `RetrievalConfig`: no rerank, ``k_max`` the rerank depth."""
    depth = -1 if config.k_max == -1 else max(config.rerank_depth, config.k_max)
    return dataclasses.replace(config, rerank=None, k_max=depth)


__all__ = ["CrossEncoderScorer", "RerankedRetriever", "attach_first_stage", "first_stage_config"]
