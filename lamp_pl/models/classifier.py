"""The classifier family (CLS-P): a sequence-classification head over the task's label set.

Outputs are the label strings themselves, so metrics and prediction files are those of the
generating families. Works on encoder (BERT), encoder-decoder (T5) and decoder-only (Llama,
Qwen) backbones through `AutoModelForSequenceClassification`.
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch
import torch.nn.functional as F

from lamp_pl.models.base import FamilyBase


class ClassifierFamily(FamilyBase):
    """Cross-entropy over `task.labels`; prediction = the arg-max label."""

    auto_class_name: ClassVar[str] = "AutoModelForSequenceClassification"
    default_model_type: ClassVar[str] = "bert"
    peft_task_type: ClassVar[str] = "SEQ_CLS"

    def __post_init__(self) -> None:
        if self.task.metric_kind == "generation" or not self.task.labels:
            raise ValueError(
                f"model.family classifier needs a task with a closed label set; {self.task.name} is a "
                f"{self.task.metric_kind} task: use model.family seq2seq or causal"
            )
        self.labels = tuple(self.task.labels)
        self._index = {label: i for i, label in enumerate(self.labels)}

    def config_overrides(self) -> dict[str, Any]:
        # Decoder-only heads pool the last non-pad token, so they need the pad id in their config.
        return {
            "num_labels": len(self.labels),
            "id2label": dict(enumerate(self.labels)),
            "label2id": dict(self._index),
            "pad_token_id": self.tokenizer.pad_token_id,
        }

    def label_index(self, target: str, question_id: str) -> int:
        """Class index of a gold output; a gold outside the label set is a data error."""
        if target in self._index:
            return self._index[target]
        try:  # ratings written as "4.0"
            return self._index[str(int(float(target)))]
        except (ValueError, KeyError):
            raise ValueError(
                f"{self.task.name} question {question_id!r}: gold output {target!r} is not one of the "
                f"task's labels {list(self.labels)}"
            ) from None

    def logits(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        index = torch.tensor(
            [self.label_index(t, i) for t, i in zip(batch["targets"], batch["ids"])], device=batch["input_ids"].device
        )
        return F.cross_entropy(self.logits(model, batch).float(), index)

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        return [self.labels[i] for i in self.logits(model, batch).argmax(-1).tolist()]
