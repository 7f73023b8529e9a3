"""A tiktoken encoding with the few Hugging Face tokenizer methods lamp_pl's prompt budget uses.

Hosted models (the OpenAI API) publish no Hugging Face tokenizer; their prompt budget is counted
in a named tiktoken encoding instead: `data.tokenizer: tiktoken:o200k_base` (or `cl100k_base`).
Only counting, truncating and decoding are needed: the ids never reach a network in this process.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lamp_pl.errors import LaMPError
from lamp_pl.extras import require

PREFIX = "tiktoken:"


class TiktokenTokenizer:
    """`tokenizer(text)["input_ids"]`, truncation, `decode`, `batch_decode` and padding ids over tiktoken."""

    def __init__(self, encoding: Any, name_or_path: str | None = None) -> None:
        """
        Args:
            encoding: A `tiktoken.Encoding`.
            name_or_path: What the config named (`tiktoken:<encoding>`).
        """
        self.encoding = encoding
        self.name_or_path = name_or_path or PREFIX + encoding.name
        self.eos_token_id = self.pad_token_id = encoding.eot_token
        self.bos_token_id = None
        self.eos_token = self.pad_token = encoding.decode([encoding.eot_token])
        self.chat_template = None

    @classmethod
    def named(cls, name_or_path: str) -> TiktokenTokenizer:
        """The tokenizer of `tiktoken:<encoding>` (tiktoken downloads an encoding's file once)."""
        tiktoken = require("tiktoken", "a tiktoken: tokenizer")

        name = name_or_path.removeprefix(PREFIX)
        try:
            encoding = tiktoken.get_encoding(name)
        except ValueError:
            raise LaMPError(
                f"data.tokenizer {name_or_path!r}: unknown tiktoken encoding; choose one of "
                f"{sorted(tiktoken.list_encoding_names())}"
            ) from None
        return cls(encoding, name_or_path)

    def __len__(self) -> int:
        return int(self.encoding.n_vocab)

    def _encode(self, text: str, truncation: bool, max_length: int | None) -> list[int]:
        ids = self.encoding.encode_ordinary(text)
        return ids[:max_length] if truncation and max_length is not None else ids

    def __call__(
        self, text: str | Iterable[str], truncation: bool = False, max_length: int | None = None, **_: Any
    ) -> dict[str, Any]:
        if isinstance(text, str):
            return {"input_ids": self._encode(text, truncation, max_length)}
        return {"input_ids": [self._encode(t, truncation, max_length) for t in text]}

    def decode(self, ids: Iterable[int], skip_special_tokens: bool = False) -> str:
        kept = [int(i) for i in ids if not (skip_special_tokens and int(i) == self.eos_token_id)]
        return self.encoding.decode(kept)

    def batch_decode(self, rows: Iterable[Iterable[int]], skip_special_tokens: bool = False) -> list[str]:
        return [self.decode(row, skip_special_tokens) for row in rows]
