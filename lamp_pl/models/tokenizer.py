"""The generator's tokenizer, loaded the way Hugging Face loads it, plus one rule batches need.

Decoder-only tokenizers (Llama, Mistral, Qwen) often define no pad token. Batches are padded, and
the padding is always masked out (attention mask, labels of -100), so the end-of-sequence token
serves as the pad token there; every other tokenizer is returned exactly as `from_pretrained`
gives it. The data module and the model both load through here, so they pad alike.
"""

from __future__ import annotations

from typing import Any


def load_tokenizer(name_or_path: str) -> Any:
    """`AutoTokenizer.from_pretrained(name_or_path)`, with EOS as the pad token when it has none.

    Args:
        name_or_path: Hub name or local folder; `tiktoken:<encoding>` (e.g. `tiktoken:o200k_base`)
            counts in a tiktoken encoding instead, for hosted models without a Hugging Face tokenizer.
    """
    if name_or_path.startswith("tiktoken:"):
        from lamp_pl.served.tiktoken_tokenizer import TiktokenTokenizer

        return TiktokenTokenizer.named(name_or_path)
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


__all__ = ["load_tokenizer"]
