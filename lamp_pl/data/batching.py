"""Evaluation batches of prompts sorted by length, and predictions put back in file order.

Generation in file order pads every batch to its longest prompt and keeps every row of a batch
waiting for its longest output. Sorting the prompts of a split by tokenized length (longest first,
so a batch that does not fit in memory fails at once, not at the end) puts prompts of about the
same length together: less padding, and beams that finish at about the same step. A batch may be
bounded by a count, by a number of padded prompt tokens (`max_tokens`), or both.

Sorting changes only which rows share a batch. The predictions file keeps the split's own order
(`in_file_order`), and with greedy decoding each prediction is the one a file-order batch gives,
since every row's attention mask hides the padding of its batch.

Under DDP the sorted batches (not rows) are split across ranks by an `UnrepeatedDistributedSampler`,
so every rank gets batches of similar length and no question is scored twice.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from torch.utils.data import Dataset


def prompt_lengths(dataset) -> np.ndarray:
    """Token count of each row's `input_ids`, read from the Arrow column without decoding rows."""
    table = getattr(dataset, "table", None)
    if table is not None:
        import pyarrow.compute as pc

        column = table.data.column("input_ids")
        return np.asarray(pc.list_value_length(column).to_numpy(zero_copy_only=False), dtype=np.int64)
    return np.asarray([len(dataset[i]["input_ids"]) for i in range(len(dataset))], dtype=np.int64)


def length_sorted_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, max_tokens: int | None = None
) -> list[list[int]]:
    """Row indices grouped into batches of prompts sorted by length, longest first.

    Args:
        lengths: Tokenized prompt length of each row.
        batch_size: Most rows per batch.
        max_tokens: Most padded prompt tokens per batch (rows x longest prompt of the batch);
            `None` bounds by `batch_size` only. A prompt longer than this forms a batch alone.

    Returns:
        Batches of row indices; rows of equal length keep their file order (a stable sort).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1 or None, got {max_tokens}")
    values = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-values, kind="stable")
    batches: list[list[int]] = []
    start = 0
    while start < len(order):
        # Sorted longest first, so a batch's width is the length of its first row.
        rows = (
            batch_size
            if max_tokens is None
            else max(1, min(batch_size, max_tokens // max(int(values[order[start]]), 1)))
        )
        batches.append(order[start : start + rows].tolist())
        start += rows
    return batches


class BatchedRows(Dataset):
    """A dataset whose item `i` is batch `i`: a collated batch of the rows that batch names.

    Used with `DataLoader(batch_size=None, collate_fn=collate)`, so the batches (not rows) are
    what a sampler splits across ranks and what DataLoader workers build.
    """

    def __init__(self, rows: Dataset, batches: list[list[int]]) -> None:
        self.rows, self.batches = rows, batches

    def __len__(self) -> int:
        return len(self.batches)

    def __getitem__(self, index: int) -> list[dict]:
        return [self.rows[i] for i in self.batches[int(index)]]


def sorted_eval_dataset(rows: Dataset, batch_size: int, max_tokens: int | None = None) -> BatchedRows:
    """`rows` as length-sorted batches (see `length_sorted_batches`)."""
    return BatchedRows(rows, length_sorted_batches(prompt_lengths(rows), batch_size, max_tokens))


def in_file_order(predictions: list[dict[str, str]], ids: Sequence[str]) -> list[dict[str, str]]:
    """`predictions` ordered as the split's questions `ids`; any id not among them follows, in
    the order it came."""
    position: dict[str, int] = {qid: i for i, qid in enumerate(ids)}
    last = len(position)

    def key(item: tuple[int, dict[str, str]]) -> tuple[int, int]:
        return position.get(item[1]["id"], last), item[0]

    return [record for _, record in sorted(enumerate(predictions), key=key)]
