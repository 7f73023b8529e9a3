"""Tokenized prompts of one split, cached as Arrow (`datasets`), and the padding collate function.

Tokenizing once and memory-mapping the result keeps the collate function to slicing and padding,
and lets DataLoader workers share the data without copying it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lamp_pl.cache import CacheError, atomic_folder, folder_is_valid
from lamp_pl.data.lamp import LaMPQuestion


class TokenizedSplit:
    """Rows of `id`, `prompt`, `input_ids`, `labels`, `target`, `retrieved` for one split (a
    map-style dataset: `DataLoader` takes it as is; no torch is imported until batches are made)."""

    def __init__(self, table) -> None:
        self.table = table
        self.table.set_format(None)

    @staticmethod
    def exists(folder: str | Path) -> bool:
        """A complete folder whose files match their checksums (sizes always, small files'
        content too); a damaged one is logged and counts as absent, so it is rebuilt."""
        return folder_is_valid(folder)

    @classmethod
    def load(cls, folder: str | Path) -> TokenizedSplit:
        from datasets import load_from_disk

        try:
            return cls(load_from_disk(str(folder)))
        except (OSError, ValueError) as error:  # pyarrow's ArrowInvalid is a ValueError
            raise CacheError(f"{folder}: unreadable tokenized prompts ({error}); delete it to rebuild") from None

    @classmethod
    def build(
        cls,
        folder: str | Path,
        tokenizer,
        questions: list[LaMPQuestion],
        prompts: list[str],
        retrieved: list[list[str]],
        max_input_length: int,
        max_target_length: int,
    ) -> TokenizedSplit:
        """Tokenize and save atomically: a killed build leaves nothing under `folder`."""
        from datasets import Dataset as ArrowDataset

        inputs = tokenizer(prompts, truncation=True, max_length=max_input_length)["input_ids"] if prompts else []
        targets = [q.output for q in questions]
        labels = [[] for _ in questions]
        if questions and all(t is not None for t in targets):
            labels = tokenizer(targets, truncation=True, max_length=max_target_length)["input_ids"]
        table = ArrowDataset.from_dict(
            {
                "id": [q.id for q in questions],
                "prompt": prompts,
                "input_ids": inputs,
                "labels": labels,
                "target": targets,
                "retrieved": retrieved,
            }
        )
        return cls.load(atomic_folder(folder, lambda tmp: table.save_to_disk(str(tmp))))

    @property
    def prompts(self) -> list[str]:
        return self.table["prompt"]

    @property
    def ids(self) -> list[str]:
        return self.table["id"]

    def __len__(self) -> int:
        return len(self.table)

    def __getitem__(self, index: int) -> dict:
        return self.table[int(index)]


def _pad(sequences: list[list[int]], value: int) -> Any:
    import torch

    width = max((len(s) for s in sequences), default=0)
    out = torch.full((len(sequences), width), value, dtype=torch.long)
    for row, seq in enumerate(sequences):
        out[row, : len(seq)] = torch.tensor(seq, dtype=torch.long)
    return out


def collate(rows: list[dict], pad_token_id: int) -> dict:
    """Pad a list of rows into a batch; `labels` (padded with -100) only when every row has a gold."""
    import torch

    input_ids = _pad([r["input_ids"] for r in rows], pad_token_id)
    # The mask comes from lengths, not from comparing with the pad id: T5's pad id is also its
    # decoder start id, and a tokenizer may emit it inside a prompt.
    lengths = torch.tensor([len(r["input_ids"]) for r in rows])
    batch = {
        "input_ids": input_ids,
        "attention_mask": (torch.arange(input_ids.shape[1])[None, :] < lengths[:, None]).long(),
        "ids": [r["id"] for r in rows],
        "targets": [r["target"] for r in rows],
        "retrieved": [r["retrieved"] for r in rows],
        "prompts": [r.get("prompt") for r in rows],  # the text, for generators behind a server
    }
    if rows and all(r["target"] is not None and r["labels"] for r in rows):
        batch["labels"] = _pad([r["labels"] for r in rows], -100)
    return batch
