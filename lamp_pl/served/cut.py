"""The text of a cut prompt: what re-tokenizes to exactly the ids a local model reads.

The data module cuts a prompt longer than `data.max_input_length` tokens by truncating its token
ids: the prompt's first `m` tokens, plus the special tokens the tokenizer adds around them (`<s>`
before for Llama, `</s>` after for T5). A server takes text and tokenizes it itself, with the same
tokenizer, so the text sent is the prompt up to the end of its `m`-th token (the tokenizer's
character offsets), checked by tokenizing it again. Offsets, not decoding: decoding writes `<unk>`
as the literal string, drops or rewrites characters (normalisation, byte-fallback pieces), and
counting "special" ids to find the cut miscounts `<unk>`, which is one of them but is text.

Where no text re-tokenizes to those ids (a cut between the byte-fallback pieces of one character,
a BPE merge across the cut), the text ends at the nearest earlier token boundary that does, and the
caller is told how many tokens that dropped. Tokenizers without offsets (tiktoken, slow Python
ones) are cut by decoding the ids kept, under the same check.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_TRIES = 64
"""Token boundaries tried, from the local cut backwards, before giving up on an exact text."""


@dataclass(frozen=True)
class Cut:
    """A prompt's text as sent, and how it relates to the ids a local model reads."""

    text: str
    dropped: int = 0
    """Tokens at the end of the local model's prompt that the text does not carry (0: the same ids)."""
    exact: bool = True
    """Whether the text re-tokenizes to those ids less `dropped` (False: no such text was found)."""


def _content(tokenizer: Any, prompt: str) -> tuple[list[int], list[tuple[int, int]] | None]:
    """The prompt's ids without the tokenizer's added special tokens, and their character spans."""
    try:
        encoded = tokenizer(prompt, add_special_tokens=False, return_offsets_mapping=True)
        return list(encoded["input_ids"]), [(int(a), int(b)) for a, b in encoded["offset_mapping"]]
    except (NotImplementedError, TypeError, KeyError, ValueError):  # no offsets (slow, tiktoken)
        return list(tokenizer(prompt, add_special_tokens=False)["input_ids"]), None


def _frame(full: list[int], content: list[int]) -> tuple[list[int], list[int]] | None:
    """The special ids the tokenizer adds before and after the content (`full` = head + content + tail)."""
    for start in range(len(full) - len(content) + 1):
        if full[start : start + len(content)] == content:
            return full[:start], full[start + len(content) :]
    return None


def cut_text(tokenizer: Any, prompt: str, kept: list[int]) -> Cut:
    """The text of `prompt` that `tokenizer` reads as `kept` (the ids of the prompt cut by truncation).

    Args:
        tokenizer: The model's tokenizer (a Hugging Face tokenizer or `TiktokenTokenizer`).
        prompt: The whole prompt's text.
        kept: The ids a local model reads: `tokenizer(prompt, truncation=True, max_length=...)`.

    Returns:
        The text and how many of the last tokens it leaves out (0 when it reads as `kept`).
    """
    full = list(tokenizer(prompt)["input_ids"])
    if full == kept:
        return Cut(prompt)
    content, offsets = _content(tokenizer, prompt)
    frame = _frame(full, content)
    unsure = Cut(str(tokenizer.decode(kept, skip_special_tokens=True)), exact=False)
    if frame is None:
        return unsure
    head, tail = frame
    m = len(kept) - len(head) - len(tail)
    if not 0 <= m <= len(content) or kept != head + content[:m] + tail:
        return unsure  # not a truncation of this prompt's tokens

    def text_of(j: int) -> str | None:
        """The text of the first `j` content tokens; None inside one character's pieces."""
        if offsets is None:
            return str(tokenizer.decode(content[:j]))
        if j == 0:
            return ""
        if j < len(offsets) and offsets[j][0] < offsets[j - 1][1]:
            return None  # token j shares characters with token j - 1: no text ends between them
        return prompt[: offsets[j - 1][1]]

    for j in range(m, max(-1, m - MAX_TRIES - 1), -1):
        text = text_of(j)
        if text is not None and list(tokenizer(text)["input_ids"]) == head + content[:j] + tail:
            return Cut(text, dropped=m - j)
    return unsure
