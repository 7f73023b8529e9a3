"""The shared frozen base of per-user adapters: the given `LaMPModel`, one LoRA slot swapped per user."""

from __future__ import annotations

import random
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from lamp_pl.data.lamp import load_split
from lamp_pl.errors import CheckpointError, ConfigError
from lamp_pl.lightning.checkpoints import check_checkpoint, load_checkpoint
from lamp_pl.lightning.settings import ADAPTER_TRAINING, TrainSettings
from lamp_pl.models.adapters import ADAPTER_LORA, LoraSettings
from lamp_pl.resolve import resolve_data_section, resolve_model

if TYPE_CHECKING:
    from lamp_pl.lightning.module import LaMPModel
    from lamp_pl.pipeline.data import LaMPData


def resolve_base(data: LaMPData, model: LaMPModel, ckpt_path: str | Path | None) -> None:
    """Check the model, tokenizer, encoder and base checkpoint before any data is prepared."""
    resolve_data_section(data)
    resolve_model(model.hparams["model_name_or_path"], model.hparams.get("random_init"))
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)


def build_base(model: LaMPModel, ckpt_path: str | Path | None = None):
    """`model` built, with a Lightning checkpoint's weights when given, in eval mode."""
    model.configure_model()  # builds the network where the model defers it to this hook (a no-op otherwise)
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path).get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"{ckpt_path}: not a Lightning checkpoint (no state_dict)")
        model.load_state_dict(state)
    return model.eval()


def lora_settings(lora: LoraSettings, model: LaMPModel, ckpt_path: str | Path | None) -> dict:
    """What every adapter of a folder must share (checked by `store.write_settings`)."""
    hparams = model.hparams
    # target_modules only when set, so folders written before it existed keep their settings.
    targets = {} if lora.target_modules is None else {"target_modules": list(lora.target_modules)}
    return {
        "r": lora.r,
        "alpha": lora.alpha,
        "dropout": lora.dropout,
        **targets,
        "task": hparams["task"],
        "base": hparams.get("model_name_or_path"),
        "random_init": hparams.get("random_init"),
        "ckpt": None if ckpt_path is None else str(Path(ckpt_path).resolve()),
    }


def add_lora_slot(network: torch.nn.Module, settings: dict):
    """Wrap the base network with one LoRA adapter slot named ``user`` (base weights frozen)."""
    from peft import LoraConfig, TaskType, get_peft_model

    encoder_decoder = getattr(getattr(network, "config", None), "is_encoder_decoder", True)
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM,
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
        target_modules=settings.get("target_modules"),
    )
    return get_peft_model(network, config, adapter_name="user")


def lora_state(peft_model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model, adapter_name="user").items()}


def set_lora_state(peft_model, state: dict[str, torch.Tensor]) -> None:
    """Swap the slot's weights in place: no base reload, no new modules."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, state, adapter_name="user")
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ConfigError(f"adapter state does not fit the base model: unexpected keys {unexpected[:3]}")


def train_lora(
    peft_model,
    tokenizer,
    pairs: list[tuple[str, str]],
    training: TrainSettings,
    max_input_length: int,
    max_target_length: int,
    seed: int,
) -> float:
    """Train the LoRA slot of `peft_model` on (input, gold) pairs with AdamW; eval mode after.

    The learning rate rises linearly over `training.warmup_ratio` of the steps, then stays.

    Args:
        peft_model: The base wrapped by `add_lora_slot` (only the slot's weights are trainable).
        tokenizer: The base's tokenizer (its pad id is masked out of the labels).
        pairs: (input text, gold output text) training pairs.
        training: Learning rate, weight decay, warm-up, pairs per step and passes
            (`training.seed` is not read: `seed` is, so each user gets its own order).
        max_input_length: Input tokens kept.
        max_target_length: Target tokens kept.
        seed: Seeds the batch order of every pass.

    Returns:
        The last step's loss.
    """
    params = [p for p in peft_model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(params, lr=training.lr, weight_decay=training.weight_decay)
    size = training.batch_size
    warmup = int(training.warmup_ratio * training.epochs * -(-len(pairs) // size))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: min(1.0, (step + 1) / (warmup + 1)))
    rng, loss = random.Random(seed), torch.tensor(0.0)
    peft_model.train()
    for _ in range(training.epochs):
        order = list(range(len(pairs)))
        rng.shuffle(order)
        for start in range(0, len(order), size):
            chosen = [pairs[i] for i in order[start : start + size]]
            inputs = tokenizer(
                [p[0] for p in chosen], truncation=True, max_length=max_input_length, padding=True, return_tensors="pt"
            )
            labels = tokenizer(
                [p[1] for p in chosen], truncation=True, max_length=max_target_length, padding=True, return_tensors="pt"
            )["input_ids"]
            labels[labels == tokenizer.pad_token_id] = -100
            loss = peft_model(
                input_ids=inputs["input_ids"], attention_mask=inputs["attention_mask"], labels=labels
            ).loss
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            scheduler.step()
    peft_model.eval()
    return float(loss.detach())


@dataclass(frozen=True)
class AdapterJob:
    """Adapters trained over one frozen base: the config's data and model sections, the base
    checkpoint, and the training and LoRA settings every adapter of a folder shares."""

    data: LaMPData
    """The data section (task, splits, lengths)."""
    model: LaMPModel
    """The model section: the frozen base."""
    ckpt_path: str | Path | None = None
    """A Lightning checkpoint of the base (None: the model section's weights)."""
    training: TrainSettings = ADAPTER_TRAINING
    """Learning rate, weight decay, warm-up, pairs per step, passes and seed."""
    lora: LoraSettings = ADAPTER_LORA
    """Rank, alpha, dropout and target modules of each adapter."""

    def questions(self, split: str) -> list[Any]:
        """The questions of `split`, once model, tokenizer and checkpoint are checked (before any
        work) and the synthetic data is written."""
        resolve_base(self.data, self.model, self.ckpt_path)
        self.data.write_synthetic_data()
        return load_split(self.data.data_dir, self.data.task, split)

    def settings(self) -> dict:
        """What every adapter of the folder must share (`lora_settings`)."""
        return lora_settings(self.lora, self.model, self.ckpt_path)

    def slot(self, settings: dict) -> tuple[Any, Any]:
        """(the base built with its checkpoint, the base wrapped with one LoRA slot seeded by
        `training.seed`)."""
        base = build_base(self.model, self.ckpt_path)
        torch.manual_seed(self.training.seed)
        return base, add_lora_slot(base.model, settings)

    def train(self, peft_model: Any, tokenizer: Any, pairs: list[tuple[str, str]], seed: int) -> float:
        """`train_lora` with these settings and the data section's lengths."""
        lengths = (self.data.max_input_length, self.data.max_target_length)
        return train_lora(peft_model, tokenizer, pairs, self.training, *lengths, seed)
