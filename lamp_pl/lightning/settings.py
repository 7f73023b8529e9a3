"""`TrainSettings`: the one declaration of how every lamp_pl trainer steps.

The per-user and task LoRA adapters, the ROPG retriever (distillation and policy gradient) and
the RSPG selector take one `TrainSettings` each instead of their own lr, batch size, epochs,
warm-up, weight decay and seed parameters. Each command names its own default instance where its
trainer has always used other values (a LoRA adapter learns at 1e-3, an encoder at 1e-5); the
field defaults below are the retriever's. On the command line the fields are `--training.lr`
(and so on), or the flat `--lr` the commands always took (see `lamp_pl.cli.tree`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class TrainSettings:
    """How a trainer steps: optimizer, batches, passes and seed."""

    lr: float = 1e-5
    """Peak AdamW learning rate."""
    batch_size: int = 8
    """Training examples (questions or pairs) per step and device."""
    epochs: int = 3
    """Passes over the training examples (`--max_epochs` is the same option)."""
    warmup_ratio: float = 0.1
    """Fraction of the steps over which the learning rate rises linearly from 0; after it the
    encoder and selector trainers lower it linearly to 0, the LoRA trainers keep it."""
    weight_decay: float = 0.01
    """AdamW weight decay (never on biases and normalisation weights)."""
    seed: int = 0
    """Seeds the batch order, the initialisation and the run."""

    aliases: ClassVar[dict[str, str]] = {"max_epochs": "epochs"}
    """Older option names of fields (the command floor accepts them too)."""

    @classmethod
    def of(cls, value: TrainSettings | Mapping[str, Any] | None) -> TrainSettings:
        """The settings from an instance, a mapping (a checkpoint's hyper-parameters) or None
        (the defaults)."""
        if value is None:
            return cls()
        if isinstance(value, TrainSettings):
            return value
        return cls(**dict(value))

    def take(self, options: Mapping[str, Any]) -> tuple[TrainSettings, dict[str, Any]]:
        """These settings with the fields a flat mapping sets (by name or alias, e.g. a recipe's
        ``{lr: 1e-4, max_epochs: 2, max_length: 64}``), and the mapping's other entries."""
        names = {field.name for field in dataclasses.fields(self)}
        mine = {
            self.aliases.get(key, key): value for key, value in options.items() if self.aliases.get(key, key) in names
        }
        rest = {key: value for key, value in options.items() if self.aliases.get(key, key) not in names}
        return dataclasses.replace(self, **mine), rest

    def as_dict(self) -> dict[str, Any]:
        """Plain values, as a checkpoint's hyper-parameters store them."""
        return dataclasses.asdict(self)


# Each trainer's defaults, side by side: the field defaults are the retriever encoder's; a
# scoring head learns faster, and a LoRA update on a user's few pairs is short and undecayed.
ENCODER_TRAINING = TrainSettings()
"""`lamp-pl fit-retriever` / `fit-retriever-rl` (ROPG's encoder)."""
SELECTOR_TRAINING = TrainSettings(lr=1e-4, batch_size=16)
"""`lamp-pl fit-selector` (RSPG's encoder and scoring head)."""
ADAPTER_TRAINING = TrainSettings(lr=1e-3, batch_size=8, epochs=5, warmup_ratio=0.0, weight_decay=0.0)
"""`lamp-pl fit-users`: a constant learning rate of 1e-3, no weight decay."""
TASK_ADAPTER_TRAINING = dataclasses.replace(ADAPTER_TRAINING, epochs=2)
"""`lamp-pl fit-task-adapter`: the user adapters' training, two passes over every question."""

__all__ = [
    "ADAPTER_TRAINING",
    "ENCODER_TRAINING",
    "SELECTOR_TRAINING",
    "TASK_ADAPTER_TRAINING",
    "TrainSettings",
]
