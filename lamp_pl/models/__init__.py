"""Generator families behind one LightningModule (`LaMPModel`): seq2seq, causal LM, classifier.

A family is a small strategy object that knows three things about its kind of network: how to
build it (pretrained or randomly initialised), the training loss of a LaMP batch, and how to turn
a batch into output strings. Everything else (data, metrics, predictions, checkpoints) is shared,
so every family reads the same batches and writes the same files.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, Protocol

from lamp_pl.errors import ConfigError

if TYPE_CHECKING:  # annotations only: the data pipeline imports this package without torch
    import torch

FamilyName = Literal["seq2seq", "causal", "classifier", "served"]


class Family(Protocol):
    """What `LaMPModel` needs from a generator family."""

    auto_class_name: str
    """The `transformers` Auto class that loads this family's checkpoints (also used by export)."""

    def build(self) -> torch.nn.Module:
        """The network, pretrained or randomly initialised, in train mode."""

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        """Mean training loss of a batch with `labels` (and `targets`)."""

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        """One output string per question of the batch, in the task's output format."""


def family_class(name: str) -> type[Family]:
    """The strategy class of family `name` (its `auto_class_name` names the Auto class that loads
    the family's checkpoints, for `get_family` and the exported model card alike)."""
    from lamp_pl.models.causal import CausalFamily
    from lamp_pl.models.classifier import ClassifierFamily
    from lamp_pl.models.seq2seq import Seq2SeqFamily
    from lamp_pl.models.served import ServedFamily

    families: dict[str, type[Family]] = {
        "seq2seq": Seq2SeqFamily,
        "causal": CausalFamily,
        "classifier": ClassifierFamily,
        "served": ServedFamily,
    }
    if name not in families:
        raise ConfigError(f"model.family: unknown family {name!r}; choose one of {sorted(families)}")
    return families[name]


def get_family(name: str, **kwargs) -> Family:
    """Build the strategy object of family `name` (see `LaMPModel` for the keyword arguments)."""
    return family_class(name)(**kwargs)
