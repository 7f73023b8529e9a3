"""LaMPModel: one LightningModule for every generator family (seq2seq, causal LM, classifier).

The family (lamp_pl/models/) builds the network, computes the loss and turns a batch into output
strings; this class owns what is shared: LoRA, quantization, building in `configure_model`,
trainable-only checkpoints, optimisation, metrics and prediction files.
"""

from __future__ import annotations

import warnings
from typing import Any

import lightning as L
import torch
from lightning.pytorch.callbacks import ModelCheckpoint

from lamp_pl.errors import ConfigError
from lamp_pl.evaluation.predictions import gather_predictions, output_dirs, write_run_outputs
from lamp_pl.lightning.optim import adamw_with_linear_warmup
from lamp_pl.lightning.settings import TrainSettings
from lamp_pl.lightning.steplog import loss_reaches_loggers, loss_read_every_step
from lamp_pl.lightning.transfer import is_flat_batch, move_flat_batch
from lamp_pl.metrics.lamp import build_metrics
from lamp_pl.models import FamilyName, get_family
from lamp_pl.models.adapters import (
    LoraSettings,
    Quantization,
    apply_lora,
    enable_gradient_checkpointing,
    mark_fsdp_blocks,
    quantization_kwargs,
    trainable_state,
)
from lamp_pl.models.base import check_attn_implementation
from lamp_pl.models.tokenizer import load_tokenizer
from lamp_pl.pipeline.batching import in_file_order
from lamp_pl.served.settings import ServedError, ServedSettings
from lamp_pl.tasks import get_task

TRANSFER_NOTICE = r"You have overridden `transfer_batch_to_device` in `LightningModule` but have passed in a"
"""Lightning's warning, on every fit with a LightningDataModule, that LaMPModel moves its batches
itself (`LaMPModel.transfer_batch_to_device`): deliberate, so not shown (installed by each
LaMPModel, since a filter installed at import can be undone by a `catch_warnings` around it)."""

TRAINABLE_ONLY = "lamp_pl_trainable_only"
"""Checkpoint key set when `state_dict` holds only the trainable (adapter) weights."""


def _default_tokenizer(model_name_or_path: str, family: str, served: Any) -> str:
    """The model's own tokenizer; a served model's weights are the server's, so its tokenizer is the
    served model's name (`model_name_or_path` is never read for it)."""
    if family != "served" or served is None:
        return model_name_or_path
    return served.model if isinstance(served, ServedSettings) else served.get("model") or model_name_or_path


class LaMPModel(L.LightningModule):
    """Fine-tunes and evaluates a generator on retrieval-augmented LaMP prompts.

    Training minimises the family's loss of the gold output; validation, test and predict produce
    output strings (generated, or the classifier's label) and score them with the task's metrics.
    """

    def __init__(
        self,
        model_name_or_path: str = "google/flan-t5-base",
        family: FamilyName = "seq2seq",
        task: str = "LaMP_2",
        tokenizer: str | None = None,
        random_init: dict[str, Any] | None = None,
        lr: float = 5e-5,
        weight_decay: float = 1e-4,
        warmup_ratio: float = 0.05,
        num_beams: int = 4,
        max_new_tokens: int | None = None,
        chat_template: bool = False,
        peft: LoraSettings | None = None,
        quantization: Quantization | None = None,
        gradient_checkpointing: bool = False,
        trust_remote_code: bool = False,
        attn_implementation: str | None = None,
        served: ServedSettings | None = None,
    ) -> None:
        """
        Args:
            model_name_or_path: Hub name or local folder of a checkpoint of the family's Auto class
                (`AutoModelForSeq2SeqLM`, `AutoModelForCausalLM`, `AutoModelForSequenceClassification`).
            family: `seq2seq` (T5, Flan-T5, BART), `causal` (decoder-only LMs: prompt + target,
                loss on the target only), `classifier` (CLS-P: a head over the task's labels) or
                `served` (an LLM behind an OpenAI-compatible server, `served`; evaluation only).
            task: LaMP task name (linked from the data section); picks metrics and the monitor.
            tokenizer: Generator tokenizer (linked from the data section); defaults to the model's.
            random_init: Config fields of a randomly initialised network instead of pretrained
                weights (tests, the offline demo); `model_type` picks the architecture (default
                t5 / llama / bert by family); the vocabulary size comes from the tokenizer.
            lr: AdamW learning rate.
            weight_decay: AdamW weight decay.
            warmup_ratio: Fraction of the estimated training steps spent warming up linearly.
            num_beams: Beam width of generation in validation, test and predict.
            max_new_tokens: Most tokens generated per output (default: the task's preset for long
                targets, else 128: the official generation_max_length).
            chat_template: Causal family: wrap each prompt in the tokenizer's chat template
                (instruction-tuned models).
            peft: A LoRA section: train adapters only, on a frozen base; checkpoints then hold the
                adapter weights only.
            quantization: Load the frozen base in `4bit` (QLoRA) or `8bit` with bitsandbytes
                (CUDA only; needs `peft`).
            gradient_checkpointing: Recompute activations in backward (less memory, more time).
            trust_remote_code: Allow model code from the hub (off unless you trust it).
            attn_implementation: Attention implementation transformers builds the network with
                (`eager`, `sdpa`, `flash_attention_2`, `flex_attention`, ...), passed to
                `from_pretrained` (or `from_config` with `random_init`); null keeps transformers'
                default (`sdpa` where the model has it). On CPU, T5 steps faster with `eager`.
            served: The endpoint of the `served` family (`lamp_pl.served.ServedSettings`); the
                API key is read from the environment variable it names, never stored.
        """
        super().__init__()
        warnings.filterwarnings("ignore", message=TRANSFER_NOTICE)
        self._log_every_step, self._unlogged_loss = True, None
        self.save_hyperparameters()
        self.task = get_task(task)
        max_new_tokens = max_new_tokens or self.task.max_new_tokens or 128
        self.hparams["max_new_tokens"] = max_new_tokens  # resolved, for the code that reads hparams
        self.tokenizer = load_tokenizer(tokenizer or _default_tokenizer(model_name_or_path, family, served))
        if quantization is not None and peft is None:
            raise ConfigError(
                "model.quantization: a quantized base cannot be fine-tuned directly; add a model.peft "
                "(LoRA) section (QLoRA)"
            )
        if quantization is not None and random_init is not None:
            raise ConfigError("model.quantization applies to pretrained weights, not to model.random_init")
        check_attn_implementation(attn_implementation)
        if served is not None and family != "served":
            raise ServedError(f"model.served: set only with model.family served (the family is {family!r})")
        # Validates family and task together now (e.g. classifier on a generation task), before
        # any weights load.
        self.family = get_family(
            family,
            model_name_or_path=model_name_or_path,
            tokenizer=self.tokenizer,
            task=self.task,
            random_init=random_init,
            trust_remote_code=trust_remote_code,
            attn_implementation=attn_implementation,
            num_beams=num_beams,
            max_new_tokens=max_new_tokens,
            chat_template=chat_template,
            **({"served": served} if family == "served" else {}),
        )
        # Built in configure_model, under the strategy's sharding context (FSDP shards at creation).
        self.model: torch.nn.Module | None = None
        self.metrics = torch.nn.ModuleDict(
            {stage: build_metrics(self.task.metric_kind, self.task.labels) for stage in ("val", "test")}
        )
        self._predictions: list[dict[str, str]] = []

    def configure_model(self) -> None:
        """Build the network once (Lightning may call this hook more than once)."""
        if self.model is not None:
            return
        hp = self.hparams
        family = self.family.replace(load_kwargs=quantization_kwargs(hp.quantization))
        model = family.build()
        if hp.gradient_checkpointing:
            enable_gradient_checkpointing(model, adapters=hp.peft is not None)
        if hp.peft is not None:
            settings = hp.peft if isinstance(hp.peft, LoraSettings) else LoraSettings(**hp.peft)
            model = apply_lora(
                model,
                settings,
                type(self.family).peft_task_type,
                hp.quantization is not None,
                hp.gradient_checkpointing,
            )
        mark_fsdp_blocks(model)
        self.model = model

    @property
    def saves_trainable_only(self) -> bool:
        """LoRA on a pretrained base: the base reloads from its name, so checkpoints skip it.
        A random-init base cannot be reproduced from a name, so it is saved whole."""
        return self.hparams.peft is not None and self.hparams.random_init is None

    def state_dict(self, *args, **kwargs):
        state = super().state_dict(*args, **kwargs)
        if not self.saves_trainable_only or self.model is None:
            return state
        trainable = {f"model.{n}" for n, p in self.model.named_parameters() if p.requires_grad}
        return trainable_state(state, trainable, prefix="model.")

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False):
        if not self.saves_trainable_only:
            return super().load_state_dict(state_dict, strict=strict, assign=assign)
        # Trainable-only: the frozen base was loaded by configure_model; every trainable weight
        # must come from the checkpoint, so a partial or foreign checkpoint still fails loudly.
        keys = super().load_state_dict(state_dict, strict=False, assign=assign)
        expected = set(self.state_dict())
        missing = sorted(k for k in keys.missing_keys if k in expected)
        if strict and (missing or keys.unexpected_keys):
            raise RuntimeError(
                f"LoRA checkpoint does not match the model: missing {missing[:5]}, "
                f"unexpected {keys.unexpected_keys[:5]}"
            )
        return keys

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        checkpoint[TRAINABLE_ONLY] = self.saves_trainable_only

    def forward(self, batch: dict) -> torch.Tensor:
        """The family's training loss of `batch`."""
        return self.family.loss(self.model, batch)

    def transfer_batch_to_device(self, batch: Any, device: torch.device, dataloader_idx: int) -> Any:
        """A LaMP batch's tensors to `device`, its text fields as they are (`lamp_pl.lightning.transfer`)."""
        if is_flat_batch(batch):
            return move_flat_batch(batch, device)
        return super().transfer_batch_to_device(batch, device, dataloader_idx)

    def training_step(self, batch: dict, batch_idx: int) -> torch.Tensor:
        loss = self(batch)
        if self._log_every_step:
            self.log("train/loss", loss, prog_bar=True, batch_size=len(batch["ids"]))
        else:  # logged in on_train_batch_end on the steps the loggers write (lamp_pl.lightning.steplog)
            self._unlogged_loss = (loss.detach(), len(batch["ids"]))
        return loss

    def on_train_start(self) -> None:
        self._log_every_step = loss_read_every_step(self.trainer)

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        unlogged, self._unlogged_loss = self._unlogged_loss, None
        if unlogged is not None and loss_reaches_loggers(self.trainer):
            loss, size = unlogged
            self.log("train/loss", loss, prog_bar=True, on_step=True, on_epoch=False, batch_size=size)

    @torch.no_grad()
    def generate(self, batch: dict) -> list[str]:
        """Output strings of a batch (generated text, or the classifier's label), stripped."""
        return self.family.generate(self.model, batch)

    def _evaluate(self, batch: dict, stage: str) -> list[str]:
        outputs = self.generate(batch)
        scored = [(p, t) for p, t in zip(outputs, batch["targets"]) if t is not None]
        if scored:
            self.metrics[stage].update([p for p, _ in scored], [t for _, t in scored])
        return outputs

    def validation_step(self, batch: dict, batch_idx: int) -> None:
        if "labels" in batch and getattr(self.family, "trainable", True):
            loss = self(batch)
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

    def on_fit_start(self) -> None:
        if not getattr(self.family, "trainable", True):
            raise ServedError("model.family served: a served model cannot be trained; use validate, test or predict")

    def _start_epoch(self, stage: str) -> None:
        # A family that answers a whole epoch at once (served) sends its prompts here.
        start = getattr(self.family, "start_epoch", None)
        if start is not None and not self.trainer.sanity_checking:
            start(self.trainer, stage)

    def on_validation_epoch_start(self) -> None:
        self._start_epoch("val")

    def on_validation_epoch_end(self) -> None:
        self._log_metrics("val")

    def on_test_epoch_start(self) -> None:
        self._predictions = []
        self._start_epoch("test")

    def on_predict_epoch_start(self) -> None:
        self._predictions = []
        self._start_epoch("predict")

    def on_test_epoch_end(self) -> None:
        # A split without golds (nothing scored): predictions only, never a metrics file of zeros.
        # The count is summed over ranks so every rank takes the same branch (no DDP hang).
        scored = self.trainer.strategy.reduce(self.metrics["test"].total.double(), reduce_op="sum")
        metrics = self._log_metrics("test") if scored > 0 else None
        usage = getattr(self.family, "usage", None)
        if metrics is not None and usage is not None:  # requests sent, their tokens and cost, summed over ranks
            for name, value in usage().items():
                total = self.trainer.strategy.reduce(
                    torch.tensor(value, dtype=torch.float64, device=self.device), reduce_op="sum"
                )
                metrics[f"test/{name}"] = float(total)
        self._write("test", metrics)

    def on_predict_epoch_end(self) -> None:
        self._write("predict", None)

    def _write(self, stage: str, metrics: dict[str, float] | None) -> None:
        predictions = gather_predictions(self._predictions)
        folders = output_dirs(self.trainer)
        datamodule = getattr(self.trainer, "datamodule", None)
        split = getattr(datamodule, f"{stage}_split", stage)
        rows = getattr(datamodule, "datasets", {}).get(split)
        if rows is not None:  # length-sorted batches (lamp_pl.pipeline.batching): back to file order
            predictions = in_file_order(predictions, rows.ids)
        if self.trainer.is_global_zero:
            write_run_outputs(folders, self.task.name, split, predictions, metrics)
        self._predictions = []

    def configure_optimizers(self):
        hp = self.hparams
        # The generator's options stay flat (`model.lr` in every config); the rule is the shared one.
        settings = TrainSettings(lr=hp.lr, weight_decay=hp.weight_decay, warmup_ratio=hp.warmup_ratio)
        return adamw_with_linear_warmup(
            self.model.named_parameters(), settings, self.trainer.estimated_stepping_batches
        )

    def configure_callbacks(self) -> list[L.Callback]:
        """Checkpoint on the task's own metric, so no config has to repeat it, and write
        `last.ckpt` at the end of every training epoch, improved or not (`lamp_pl.lightning.callbacks`).

        A `ModelCheckpoint` given in the trainer's config is honoured as it is: then no
        monitoring checkpoint is added here (Lightning would otherwise let it replace the user's),
        but `last.ckpt` is still written, the same rule with and without one (a `LastCheckpoint`
        is added to the trainer's callbacks beside the user's). `lamp_pl.lightning.callbacks.StepCheckpoint`
        (`last.ckpt` every N steps) is no such override and is kept beside these.
        """
        from lamp_pl.lightning.callbacks import LastCheckpoint, is_trainer_default_checkpoint

        given = [
            c
            for c in self.trainer.callbacks
            if isinstance(c, ModelCheckpoint)
            and not isinstance(c, LastCheckpoint)
            and not is_trainer_default_checkpoint(c)
        ]
        if given:
            # Returned here, a LastCheckpoint (a ModelCheckpoint subclass) would make Lightning drop
            # the user's callbacks; beside them in the trainer's list it replaces none.
            if not any(type(c) is LastCheckpoint for c in self.trainer.callbacks):
                self.trainer.callbacks.append(LastCheckpoint())
            return []
        monitor = f"val/{self.task.monitor}"
        best = ModelCheckpoint(
            monitor=monitor,
            mode=self.task.monitor_mode,
            save_last=False,
            filename="epoch{epoch}-step{step}-" + self.task.monitor + "{" + monitor + ":.4f}",
            auto_insert_metric_name=False,
        )
        # These replace the Trainer's default ModelCheckpoint: drop it here, so Lightning has no
        # callback of the trainer's to override (and says nothing about overriding it).
        self.trainer.callbacks[:] = [
            c
            for c in self.trainer.callbacks
            if not (isinstance(c, ModelCheckpoint) and is_trainer_default_checkpoint(c))
        ]
        return [best, LastCheckpoint()]
