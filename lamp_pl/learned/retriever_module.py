"""ROPG-KD: distil the generator's per-item utilities into the dense retriever's encoder.

For each question the retriever's distribution over its candidates is the softmax of the
query-item inner products divided by `temperature`; the target is the softmax of the utilities
(log-likelihoods of the gold output with one item in the prompt) divided by
`utility_temperature`; the loss is KL(target || retriever), averaged over questions. Each distinct
item text of a batch is encoded once. The trained encoder is saved with `save_pretrained` (model
and tokenizer), a folder that `retrieval.encoder` reads like any other encoder.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

import lightning as L
import torch

from lamp_pl.lightning.optim import adamw_with_linear_warmup
from lamp_pl.lightning.settings import TrainSettings
from lamp_pl.retrieval.encoder import mean_pooling


def target_distribution(utilities: torch.Tensor, mask: torch.Tensor, temperature: float) -> torch.Tensor:
    """Softmax of the utilities over each row's valid candidates (zero on padding)."""
    logits = (utilities / temperature).masked_fill(~mask, float("-inf"))
    return torch.softmax(logits, dim=-1).masked_fill(~mask, 0.0)


def kl_to_target(scores: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean over rows of KL(target || softmax(scores)) on the valid candidates."""
    log_model = torch.log_softmax(scores.masked_fill(~mask, float("-inf")), dim=-1)
    log_target = torch.log(target.clamp(min=1e-30))
    terms = torch.where(mask & (target > 0), target * (log_target - log_model), torch.zeros_like(target))
    return terms.sum(dim=-1).mean()


def ndcg(scores: torch.Tensor, gains: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Per-row NDCG of the ranking by `scores` with relevance `gains` (the target distribution)."""
    discounts = 1.0 / torch.log2(torch.arange(scores.shape[1], device=scores.device, dtype=torch.float32) + 2.0)
    order = torch.argsort(scores.masked_fill(~mask, float("-inf")), dim=-1, descending=True, stable=True)
    dcg = (gains.gather(-1, order) * discounts).sum(-1)
    ideal = (torch.sort(gains, dim=-1, descending=True).values * discounts).sum(-1)
    return dcg / ideal.clamp(min=1e-12)


class RetrieverModule(L.LightningModule):
    """Fine-tunes a mean-pooled Hugging Face encoder on generator utilities (ROPG-KD)."""

    def __init__(
        self,
        encoder: str = "facebook/contriever",
        training: TrainSettings | dict | None = None,
        temperature: float = 1.0,
        utility_temperature: float = 1.0,
        max_length: int = 256,
        normalize: bool = False,
        dropout: bool = True,
        trust_remote_code: bool = False,
    ) -> None:
        """
        Args:
            encoder: Hub name or local folder of the encoder to start from (the one indexed).
            training: The optimizer's learning rate, weight decay and warm-up (AdamW, linear
                warm-up then decay; the rest is the data module's and trainer's). None = the
                `TrainSettings` defaults.
            temperature: Divides the query-item inner products before the softmax.
            utility_temperature: Divides the utilities before their softmax.
            max_length: Truncation of queries and item texts.
            normalize: L2-normalise embeddings (as `retrieval.normalize`; keep them equal).
            dropout: Keep the encoder's dropout in training (off: deterministic steps, e.g. to
                check that DDP and one process train the same weights).
            trust_remote_code: Passed to transformers.
        """
        super().__init__()
        self.settings = TrainSettings.of(training)
        # save_hyperparameters reads the arguments from this frame: plain values in a checkpoint.
        training = self.settings.as_dict()
        self.save_hyperparameters()
        from transformers import AutoModel, AutoTokenizer

        from lamp_pl.models.pretrained import load_pretrained

        name = encoder
        self.tokenizer = AutoTokenizer.from_pretrained(name, trust_remote_code=trust_remote_code)
        self.encoder = load_pretrained(AutoModel, name, trust_remote_code=trust_remote_code).train()
        for name, parameter in self.encoder.named_parameters():
            # Mean pooling never reads the [CLS] pooler; DDP would stop on its gradient-less weights.
            if name.startswith("pooler."):
                parameter.requires_grad_(False)
        if not dropout:
            for layer in self.encoder.modules():
                if isinstance(layer, torch.nn.Dropout):
                    layer.p = 0.0

    def embed(self, texts: list[str]) -> torch.Tensor:
        """Mean-pooled embeddings, as `lamp_pl.retrieval.Encoder` computes them."""
        tokens = self.tokenizer(
            texts, padding=True, truncation=True, max_length=self.hparams.max_length, return_tensors="pt"
        ).to(self.device)
        out = self.encoder(input_ids=tokens["input_ids"], attention_mask=tokens["attention_mask"])
        pooled = mean_pooling(out.last_hidden_state.float(), tokens["attention_mask"])
        return torch.nn.functional.normalize(pooled, dim=-1) if self.hparams.normalize else pooled

    def scores(self, batch: dict) -> torch.Tensor:
        """(questions, candidates) inner products / temperature; each distinct text encoded once."""
        queries = self.embed(batch["queries"])
        items = self.embed(batch["texts"])
        index = batch["index"].clamp(min=0)
        per_item = torch.einsum("bd,bnd->bn", queries, items[index])
        return per_item / self.hparams.temperature

    def losses(self, batch: dict) -> tuple[torch.Tensor, torch.Tensor]:
        """(KL loss, mean NDCG) of a batch."""
        mask = batch["mask"]
        scores = self.scores(batch)
        target = target_distribution(batch["utilities"], mask, self.hparams.utility_temperature)
        return kl_to_target(scores, target, mask), ndcg(scores.detach(), target, mask).mean()

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss, agreement = self.losses(batch)
        size = len(batch["queries"])
        self.log("train/kl", loss, prog_bar=True, batch_size=size)
        self.log("train/ndcg", agreement, batch_size=size)
        return loss

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        loss, agreement = self.losses(batch)
        size = len(batch["queries"])
        self.log("val/kl", loss, sync_dist=True, batch_size=size)
        self.log("val/ndcg", agreement, sync_dist=True, prog_bar=True, batch_size=size)

    def configure_optimizers(self):
        return adamw_with_linear_warmup(
            self.encoder.named_parameters(), self.settings, self.trainer.estimated_stepping_batches
        )

    def save_encoder(self, folder: str | Path) -> Path:
        """`save_pretrained` of the encoder and tokenizer into `folder`, replaced atomically."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=folder.parent, prefix=f".{folder.name}."))
        try:
            self.encoder.save_pretrained(tmp)
            self.tokenizer.save_pretrained(tmp)
            if folder.exists():
                shutil.rmtree(folder)
            os.replace(tmp, folder)
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
        return folder


__all__ = ["RetrieverModule", "kl_to_target", "ndcg", "target_distribution"]
