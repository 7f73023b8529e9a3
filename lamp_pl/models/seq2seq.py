"""The seq2seq family (T5, Flan-T5, BART): the batch is already in its shape, prompt in, target out."""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from lamp_pl.models.base import FamilyBase


class Seq2SeqFamily(FamilyBase):
    """`AutoModelForSeq2SeqLM`: LM loss of the gold output, beam-search generation."""

    auto_class_name: ClassVar[str] = "AutoModelForSeq2SeqLM"
    default_model_type: ClassVar[str] = "t5"
    peft_task_type: ClassVar[str] = "SEQ_2_SEQ_LM"

    def token_ids(self) -> dict[str, Any]:
        # T5 starts decoding from the pad token.
        return {**super().token_ids(), "decoder_start_token_id": self.tokenizer.pad_token_id}

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        out = model.generate(
            input_ids=batch["input_ids"],
            attention_mask=batch["attention_mask"],
            num_beams=self.num_beams,
            max_new_tokens=self.max_new_tokens,
        )
        return [text.strip() for text in self.tokenizer.batch_decode(out, skip_special_tokens=True)]
