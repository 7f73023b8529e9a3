"""LaMPModel: a sequence-to-sequence LM (Flan-T5 by default) trained and scored on LaMP prompts."""

from __future__ import annotations

from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lamp_pl.metrics import build_metrics
from lamp_pl.predictions import gather_predictions, output_dirs, write_run_outputs
from lamp_pl.tasks import get_task


class LaMPModel(L.LightningModule):
    """Fine-tunes and evaluates a seq2seq model on retrieval-augmented LaMP prompts.

    Training minimises the LM loss of the gold output; validation, test and predict generate with
    beam search and score with the task's metrics (from the task registry).
    """

    def __init__(
        self,
        model_name_or_path: str = "google/flan-t5-base",
        task: str = "LaMP_2",
        tokenizer: str | None = None,
        random_init: dict[str, Any] | None = None,
        lr: float = 5e-5,
        weight_decay: float = 1e-4,
        warmup_ratio: float = 0.05,
        num_beams: int = 4,
        max_new_tokens: int = 64,
        trust_remote_code: bool = False,
    ) -> None:
        """
        Args:
            model_name_or_path: Hub name or local folder of an `AutoModelForSeq2SeqLM` checkpoint.
            task: LaMP task name (linked from the data section); picks metrics and the monitor.
            tokenizer: Generator tokenizer (linked from the data section); defaults to the model's.
            random_init: `T5Config` fields for a randomly initialised T5 instead of pretrained
                weights (tests, the offline demo); the vocabulary size comes from the tokenizer.
            lr: AdamW learning rate.
            weight_decay: AdamW weight decay.
            warmup_ratio: Fraction of the estimated training steps spent warming up linearly.
            num_beams: Beam width of generation in validation, test and predict.
            max_new_tokens: Most tokens generated per output.
            trust_remote_code: Allow model code from the hub (off unless you trust it).
        """
        super().__init__()
        self.save_hyperparameters()
        self.task = get_task(task)
        from transformers import AutoTokenizer

        self.tokenizer = AutoTokenizer.from_pretrained(tokenizer or model_name_or_path)
        # from_pretrained returns eval mode; Lightning no longer forces train mode on submodules.
        self.model = self._build_network().train()
        self.metrics = torch.nn.ModuleDict({
            stage: build_metrics(self.task.metric_kind, self.task.labels) for stage in ("val", "test")})
        self._predictions: list[dict[str, str]] = []

    def _build_network(self) -> torch.nn.Module:
        from transformers import AutoModelForSeq2SeqLM, T5Config, T5ForConditionalGeneration

        hp = self.hparams
        if hp.random_init is None:
            return AutoModelForSeq2SeqLM.from_pretrained(hp.model_name_or_path, trust_remote_code=hp.trust_remote_code)
        tok = self.tokenizer
        config = T5Config(vocab_size=len(tok), pad_token_id=tok.pad_token_id, eos_token_id=tok.eos_token_id,
                          decoder_start_token_id=tok.pad_token_id, **hp.random_init)
        return T5ForConditionalGeneration(config)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor | None = None):
        return self.model(input_ids=input_ids, attention_mask=attention_mask, labels=labels)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
        self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        return loss

    @torch.no_grad()
    def generate(self, batch: dict) -> list[str]:
        """Decode beam-search outputs for a batch, without special tokens, stripped."""
        hp = self.hparams
        out = self.model.generate(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"],
                                  num_beams=hp.num_beams, max_new_tokens=hp.max_new_tokens)
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]

    def _evaluate(self, batch: dict, stage: str) -> list[str]:
        outputs = self.generate(batch)
        scored = [(p, t) for p, t in zip(outputs, batch["targets"]) if t is not None]
        if scored:
            self.metrics[stage].update([p for p, _ in scored], [t for _, t in scored])
        return outputs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if "labels" in batch:
            loss = self(batch["input_ids"], batch["attention_mask"], batch["labels"]).loss
            self.log("val/loss", loss, sync_dist=True, batch_size=len(batch["ids"]))
        self._evaluate(batch, "val")

    def test_step(self, batch: dict, batch_idx: int) -> None:
        outputs = self._evaluate(batch, "test")
        self._predictions.extend({"id": i, "output": o} for i, o in zip(batch["ids"], outputs))

    def predict_step(self, batch: dict, batch_idx: int, dataloader_idx: int = 0) -> list[dict[str, str]]:
        outputs = [{"id": i, "output": o} for i, o in zip(batch["ids"], self.generate(batch))]
        self._predictions.extend(outputs)
        return outputs

    def _log_metrics(self, stage: str) -> dict[str, float]:
        values = {f"{stage}/{name}": value for name, value in self.metrics[stage].compute().items()}
        # torchmetrics already reduced across ranks, so every rank holds the same value and the
        # mean that sync_dist takes changes nothing (it only silences Lightning's DDP warning).
        self.log_dict(values, sync_dist=True)
        self.metrics[stage].reset()
        return {k: float(v) for k, v in values.items()}

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._predictions = []

    def on_predict_epoch_start(self) -> None:
        self._predictions = []

    def on_test_epoch_end(self) -> None:
        metrics = self._log_metrics("test")
        self._write("test", metrics)

    def on_predict_epoch_end(self) -> None:
        self._write("predict", None)

    def _write(self, stage: str, metrics: dict[str, float] | None) -> None:
        predictions = gather_predictions(self._predictions)
        folders = output_dirs(self.trainer)
        split = getattr(getattr(self.trainer, "datamodule", None), f"{stage}_split", stage)
        if self.trainer.is_global_zero:
            write_run_outputs(folders, self.task.name, split, predictions, metrics)
        self._predictions = []

    def configure_optimizers(self):
        hp = self.hparams
        no_decay = ("bias", "layer_norm.weight", "LayerNorm.weight")
        groups = [
            {"params": [p for n, p in self.model.named_parameters() if not n.endswith(no_decay)],
             "weight_decay": hp.weight_decay},
            {"params": [p for n, p in self.model.named_parameters() if n.endswith(no_decay)], "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, lr=hp.lr)
        total = max(1, int(self.trainer.estimated_stepping_batches))
        warmup = int(hp.warmup_ratio * total)

        def linear(step: int) -> float:
            if step < warmup:
                return (step + 1) / (warmup + 1)
            return max(0.0, (total - step) / max(1, total - warmup))

        scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear)
        return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}

    def configure_callbacks(self) -> list[L.Callback]:
        """Checkpoint on the task's own metric, so no config has to repeat it."""
        monitor = f"val/{self.task.monitor}"
        return [ModelCheckpoint(monitor=monitor, mode=self.task.monitor_mode, save_last=True,
                                filename="epoch{epoch}-step{step}-" + self.task.monitor + "{" + monitor + ":.4f}",
                                auto_insert_metric_name=False)]
