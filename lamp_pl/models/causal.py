"""The causal family: any `AutoModelForCausalLM` (Llama, Mistral, Qwen, Phi, GPT-2 ...).

The data side emits prompt ids and target ids exactly as for seq2seq, tokenized with the model's
own tokenizer, so the official token budget already applies to the prompt. This family turns them
into decoder-only sequences: the tokenizer's own special tokens are kept where a causal LM wants
them (a leading BOS on the prompt) and dropped where it does not (a T5-style `</s>` appended to the
prompt, a BOS in front of the target); then

    training:   prompt + target + EOS, labels -100 on the prompt and on padding (right-padded)
    generation: prompt alone, left-padded, and only the new tokens are decoded.
"""

from __future__ import annotations

from typing import ClassVar

import torch

from lamp_pl.errors import ConfigError
from lamp_pl.models.base import FamilyBase, pad_rows, strip_labels


def special_layout(tokenizer) -> tuple[int, int]:
    """How many special tokens the tokenizer puts before and after a text (BOS / EOS)."""
    probe = "lamp probe text"
    plain = tokenizer(probe, add_special_tokens=False)["input_ids"]
    full = tokenizer(probe)["input_ids"]
    for start in range(len(full) - len(plain) + 1):
        if full[start : start + len(plain)] == plain:
            return start, len(full) - start - len(plain)
    raise ConfigError(f"tokenizer {tokenizer.name_or_path!r}: cannot tell its special tokens from the text")


class CausalFamily(FamilyBase):
    """Decoder-only LM: loss on the target tokens only, left-padded greedy/beam generation."""

    auto_class_name: ClassVar[str] = "AutoModelForCausalLM"
    default_model_type: ClassVar[str] = "llama"
    peft_task_type: ClassVar[str] = "CAUSAL_LM"

    def __post_init__(self) -> None:
        tok = self.tokenizer
        if tok.eos_token_id is None:
            raise ConfigError(
                f"model.family causal: tokenizer {tok.name_or_path!r} has no EOS token, so a target "
                "could never end; use a causal LM's own tokenizer"
            )
        if self.chat_template and not getattr(tok, "chat_template", None):
            raise ConfigError(f"model.chat_template: tokenizer {tok.name_or_path!r} has no chat template")
        self.prefix, self.suffix = special_layout(tok)

    def token_ids(self) -> dict:
        bos = self.tokenizer.bos_token_id
        return {**super().token_ids(), **({"bos_token_id": bos} if bos is not None else {})}

    def prompt_ids(self, batch: dict) -> list[list[int]]:
        """Each prompt's ids without padding and without trailing special tokens (chat-wrapped if asked)."""
        lengths = batch["attention_mask"].sum(1).tolist()
        # The whole batch copied once (one device sync), then cut per row.
        rows = [ids[:n] for ids, n in zip(batch["input_ids"].tolist(), lengths)]
        rows = [row[: len(row) - self.suffix] for row in rows]
        if self.chat_template:
            rows = [self._chat(row) for row in rows]
        return rows

    def _chat(self, ids: list[int]) -> list[int]:
        # The prompt was fitted to the budget before wrapping; the template adds a fixed overhead.
        text = self.tokenizer.decode(ids, skip_special_tokens=True)
        wrapped = self.tokenizer.apply_chat_template(
            [{"role": "user", "content": text}], tokenize=False, add_generation_prompt=True
        )
        return self.tokenizer(wrapped, add_special_tokens=False)["input_ids"]

    def target_ids(self, batch: dict) -> list[list[int]]:
        """Each target's ids without the tokenizer's own special tokens, ended by EOS."""
        eos = self.tokenizer.eos_token_id
        return [row[self.prefix : len(row) - self.suffix] + [eos] for row in strip_labels(batch["labels"])]

    def training_sequences(self, batch: dict) -> dict[str, torch.Tensor]:
        """Right-padded `input_ids`, `attention_mask` and `labels` (-100 outside the targets)."""
        prompts, targets = self.prompt_ids(batch), self.target_ids(batch)
        sequences = [p + t for p, t in zip(prompts, targets)]
        labels = [[-100] * len(p) + t for p, t in zip(prompts, targets)]
        device = batch["input_ids"].device
        input_ids = pad_rows(sequences, self.tokenizer.pad_token_id).to(device)
        mask = pad_rows([[1] * len(s) for s in sequences], 0).to(device)
        return {"input_ids": input_ids, "attention_mask": mask, "labels": pad_rows(labels, -100).to(device)}

    def loss(self, model: torch.nn.Module, batch: dict) -> torch.Tensor:
        return model(**self.training_sequences(batch)).loss

    def generate(self, model: torch.nn.Module, batch: dict) -> list[str]:
        prompts = self.prompt_ids(batch)
        device = batch["input_ids"].device
        input_ids = pad_rows(prompts, self.tokenizer.pad_token_id, left=True).to(device)
        mask = pad_rows([[1] * len(p) for p in prompts], 0, left=True).to(device)
        out = model.generate(
            input_ids=input_ids,
            attention_mask=mask,
            num_beams=self.num_beams,
            do_sample=False,
            max_new_tokens=self.max_new_tokens,
            pad_token_id=self.tokenizer.pad_token_id,
            eos_token_id=self.tokenizer.eos_token_id,
        )
        new = out[:, input_ids.shape[1] :]
        return [text.strip() for text in self.tokenizer.batch_decode(new, skip_special_tokens=True)]
