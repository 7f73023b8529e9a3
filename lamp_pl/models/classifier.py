"""The classifier family (CLS-P): a sequence-classification head over the task's label set.

Outputs are the label strings themselves, so metrics and prediction files are those of the
generating families. Works on encoder (BERT), encoder-decoder (T5) and decoder-only (Llama,
Qwen) backbones through `AutoModelForSequenceClassification`. Single-label tasks train a softmax
head (cross-entropy, arg-max label); multi-label tasks (`metric_kind: multilabel`) a sigmoid head
(binary cross-entropy per label, every label above 0.5, written as `format_labels` writes them).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from lamp_pl.errors import ConfigError
from lamp_pl.metrics.multilabel import format_labels, parse_labels
from lamp_pl.models.base import FamilyBase


class ClassifierFamily(FamilyBase):
    """Cross-entropy over `task.labels` (prediction: the arg-max label), or for a multi-label task
    a sigmoid per label (prediction: the labels above 0.5)."""

    auto_class_name: ClassVar[str] = "AutoModelForSequenceClassification"
    default_model_type: ClassVar[str] = "bert"
    peft_task_type: ClassVar[str] = "SEQ_CLS"

    def __post_init__(self) -> None:
        if self.task.metric_kind == "generation" or not self.task.labels:
            raise ConfigError(
                f"model.family classifier needs a task with a closed label set; {self.task.name} is a "
                f"{self.task.metric_kind} task: use model.family seq2seq or causal"
            )
        self.labels = tuple(self.task.labels)
        self._index = {label: i for i, label in enumerate(self.labels)}
        self.multilabel = self.task.metric_kind == "multilabel"

    def config_overrides(self) -> dict[str, Any]:
        # Decoder-only heads pool the last non-pad token, so they need the pad id in their config.
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.labels)),
            "label2id": dict(self._index),
            "pad_token_id": self.tokenizer.pad_token_id,
            "problem_type": "multi_label_classification" if self.multilabel else "single_label_classification",
        }

    def label_index(self, target: str, question_id: str) -> int:
        """Class index of a gold output; a gold outside the label set is a data error."""
        if target in self._index:
            return self._index[target]
        try:  # ratings written as "4.0"
            return self._index[str(int(float(target)))]
        except (ValueError, KeyError):
            raise ConfigError(
                f"{self.task.name} question {question_id!r}: gold output {target!r} is not one of the "
                f"task's labels {list(self.labels)}"
            ) from None

    def logits(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        logits = self.logits(model, batch).float()
        if self.multilabel:
            chosen = [parse_labels(target, self.labels) for target in batch["targets"]]
            return F.binary_cross_entropy_with_logits(
                logits, torch.tensor(chosen, dtype=logits.dtype, device=logits.device)
            )
        index = torch.tensor(
            [self.label_index(t, i) for t, i in zip(batch["targets"], batch["ids"])], device=batch["input_ids"].device
        )
        return F.cross_entropy(logits, index)

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        logits = self.logits(model, batch)
        if self.multilabel:
            return [
                format_labels([label for label, on in zip(self.labels, row) if on], self.labels)
                for row in (logits > 0).tolist()
            ]
        return [self.labels[i] for i in logits.argmax(-1).tolist()]
