"""Log-likelihood of a gold output given a prompt, for seq2seq and causal generators.

Only the narrow interface of a generator is used: a Hugging Face model (`model.config
.is_encoder_decoder` picks the family) and its tokenizer. Seq2seq: the target is the decoder's
labels. Causal: the target is appended to the prompt and only its tokens are scored.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch


@dataclass
class PairBatch:
    """Model inputs of (prompt, target) pairs and where each target's tokens sit."""

    inputs: dict[str, torch.Tensor]
    """Keyword arguments of the model's forward."""
    target_mask: torch.Tensor
    """(batch, positions) True where a logit predicts a target token."""
    target_ids: torch.Tensor
    """(batch, positions) the target token each masked logit predicts (0 elsewhere)."""
    prompt_lengths: list[int]
    """Tokens of each prompt as the model reads it (after truncation)."""


def is_seq2seq(model: torch.nn.Module) -> bool:
    return bool(getattr(model.config, "is_encoder_decoder", False))


def _pad(rows: list[list[int]], value: int) -> torch.Tensor:
    out = torch.full((len(rows), max(1, max(len(r) for r in rows))), value, dtype=torch.long)
    for i, row in enumerate(rows):
        out[i, : len(row)] = torch.tensor(row, dtype=torch.long)
    return out


def _mask(rows: list[list[int]], width: int) -> torch.Tensor:
    lengths = torch.tensor([len(r) for r in rows])
    return (torch.arange(width)[None, :] < lengths[:, None]).long()


def encode_pairs(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    targets: Sequence[str],
    max_input_length: int = 512,
    max_target_length: int = 64,
) -> PairBatch:
    """Tokenize (prompt, target) pairs for the model's family, right-padded."""
    prompt_ids = tokenizer(list(prompts), truncation=True, max_length=max_input_length)["input_ids"]
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0
    if is_seq2seq(model):
        target_ids = tokenizer(list(targets), truncation=True, max_length=max_target_length)["input_ids"]
        ids = _pad(prompt_ids, pad)
        labels = _pad(target_ids, -100)
        mask = labels != -100
        inputs = {"input_ids": ids, "attention_mask": _mask(prompt_ids, ids.shape[1]), "labels": labels}
        return PairBatch(inputs, mask, labels.clamp(min=0), [len(p) for p in prompt_ids])
    eos = [tokenizer.eos_token_id] if tokenizer.eos_token_id is not None else []
    target_ids = [
        t[: max_target_length - len(eos)] + eos for t in tokenizer(list(targets), add_special_tokens=False)["input_ids"]
    ]
    rows = [p + t for p, t in zip(prompt_ids, target_ids)]
    ids = _pad(rows, pad)
    # Logit at position j predicts token j + 1: the target's tokens are predicted from p-1 .. p+t-2.
    mask = torch.zeros_like(ids, dtype=torch.bool)
    predicted = torch.zeros_like(ids)
    for i, (p, t) in enumerate(zip(prompt_ids, target_ids)):
        mask[i, len(p) - 1 : len(p) - 1 + len(t)] = True
        predicted[i, len(p) - 1 : len(p) - 1 + len(t)] = torch.tensor(t, dtype=torch.long)
    inputs = {"input_ids": ids, "attention_mask": _mask(rows, ids.shape[1])}
    return PairBatch(inputs, mask, predicted, [len(p) for p in prompt_ids])


def token_log_probs(logits: torch.Tensor, batch: PairBatch) -> torch.Tensor:
    """Per-example sum of the target tokens' log-probabilities."""
    log_probs = torch.log_softmax(logits.float(), dim=-1)
    picked = log_probs.gather(-1, batch.target_ids.to(logits.device).unsqueeze(-1)).squeeze(-1)
    return (picked * batch.target_mask.to(logits.device)).sum(dim=-1)


def forward_pairs(model: torch.nn.Module, batch: PairBatch, **kwargs):
    """Run the model on a `PairBatch` (labels are given to seq2seq models for the decoder inputs)."""
    device = next(model.parameters()).device
    return model(**{k: v.to(device) for k, v in batch.inputs.items()}, **kwargs)


@torch.no_grad()
def log_likelihoods(
    model: torch.nn.Module,
    tokenizer,
    prompts: Sequence[str],
    targets: Sequence[str],
    batch_size: int = 32,
    max_input_length: int = 512,
    max_target_length: int = 64,
) -> list[float]:
    """The generator's log-likelihood of each target given its prompt (sum over target tokens).

    Args:
        model: A Hugging Face seq2seq or causal LM (in eval mode: dropout would add noise).
        tokenizer: Its tokenizer.
        prompts: One prompt per pair.
        targets: One gold output per pair.
        batch_size: Pairs per forward pass; batches are consecutive, so a fixed list of pairs
            always forms the same batches (results do not depend on who else is scored).
        max_input_length: Prompt truncation, as the datamodule's.
        max_target_length: Target truncation, as the datamodule's.

    Returns:
        One float per pair, in order.
    """
    if len(prompts) != len(targets):
        raise ValueError(f"{len(prompts)} prompts for {len(targets)} targets")
    out: list[float] = []
    for start in range(0, len(prompts), batch_size):
        batch = encode_pairs(
            model,
            tokenizer,
            prompts[start : start + batch_size],
            targets[start : start + batch_size],
            max_input_length,
            max_target_length,
        )
        out.extend(token_log_probs(forward_pairs(model, batch).logits, batch).tolist())
    return out


__all__ = ["PairBatch", "encode_pairs", "forward_pairs", "is_seq2seq", "log_likelihoods", "token_log_probs"]
