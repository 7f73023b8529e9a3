"""Evaluation batches of prompts sorted by length, and predictions put back in file order.

Generation in file order pads every batch to its longest prompt and keeps every row of a batch
waiting for its longest output. Sorting the prompts of a split by tokenized length (longest first,
so a batch that does not fit in memory fails at once, not at the end) puts prompts of about the
same length together: less padding, and beams that finish at about the same step. A batch may be
bounded by a count, by a number of padded prompt tokens (`max_tokens`), or both.

Sorting changes only which rows share a batch. The predictions file keeps the split's own order
(`in_file_order`), and with greedy decoding each prediction is the one a file-order batch gives,
since every row's attention mask hides the padding of its batch.

Under DDP (`world_size` ranks) the sorted rows are dealt to the ranks in turn (rank r takes the
r-th, (r + W)-th, ... longest), so every rank holds prompts of about the same lengths and at least
one row whenever the split has as many rows as there are ranks; each rank cuts its share into the
same number of batches, and the batches are laid out so that the evaluation sampler
(`lamp_pl.pipeline.sharding.UnpaddedShards`: rank r takes positions r, r + W, ...) hands each rank its
own. A rank without a batch fails (Lightning refuses an empty loader) while the others wait in
the epoch-end collectives (metric sync, gathered predictions): cutting the sorted split into
batches first and dealing the batches (the first version) left every rank but the first with
nothing when a split fitted in one batch. No question is scored twice and none is left out.
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


def _cut(values: np.ndarray, rows: np.ndarray, batch_size: int, max_tokens: int | None) -> list[list[int]]:
    """`rows` (sorted longest first) cut greedily into the fewest batches within the bounds."""
    batches: list[list[int]] = []
    start = 0
    while start < len(rows):
        # Sorted longest first, so a batch's width is the length of its first row.
        count = (
            batch_size
            if max_tokens is None
            else max(1, min(batch_size, max_tokens // max(int(values[rows[start]]), 1)))
        )
        batches.append(rows[start : start + count].tolist())
        start += count
    return batches


def _split_to(batches: list[list[int]], count: int) -> list[list[int]]:
    """`batches` with their largest halved (in place, so the order is kept) until there are
    `count`; a half is within any bound the whole was within."""
    batches = list(batches)
    while len(batches) < count:
        largest = max(range(len(batches)), key=lambda i: len(batches[i]))
        rows = batches[largest]
        half = (len(rows) + 1) // 2
        batches[largest : largest + 1] = [rows[:half], rows[half:]]
    return batches


def length_sorted_batches(
    lengths: Sequence[int] | np.ndarray, batch_size: int, max_tokens: int | None = None, world_size: int = 1
) -> list[list[int]]:
    """Row indices grouped into batches of prompts sorted by length, longest first.

    Args:
        lengths: Tokenized prompt length of each row.
        batch_size: Most rows per batch.
        max_tokens: Most padded prompt tokens per batch (rows x longest prompt of the batch);
            `None` bounds by `batch_size` only. A prompt longer than this forms a batch alone.
        world_size: Ranks sharing the split. Rank r's rows are the r-th, (r + W)-th, ... longest;
            each rank gets the same number of batches S (S - 1 for a rank with fewer than S rows,
            which then has one row per batch), and its s-th batch is at position s * W + r, the
            position `UnpaddedShards` gives it.

    Returns:
        Batches of row indices; rows of equal length keep their file order (a stable sort).
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}")
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max_tokens must be at least 1 or None, got {max_tokens}")
    if world_size < 1:
        raise ValueError(f"world_size must be at least 1, got {world_size}")
    values = np.asarray(lengths, dtype=np.int64)
    order = np.argsort(-values, kind="stable")
    shares = [_cut(values, order[rank::world_size], batch_size, max_tokens) for rank in range(world_size)]
    steps = max(len(share) for share in shares)
    # A rank's row count falls at most one short of the first rank's, so min(steps, rows) is
    # steps or steps - 1, never rising with the rank: the layout below has no holes.
    shares = [_split_to(share, min(steps, len(order[rank::world_size]))) for rank, share in enumerate(shares)]
    return [share[step] for step in range(steps) for share in shares if step < len(share)]


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


def sorted_eval_dataset(
    rows: Dataset, batch_size: int, max_tokens: int | None = None, world_size: int = 1
) -> BatchedRows:
    """`rows` as length-sorted batches laid out for `world_size` ranks (see `length_sorted_batches`)."""
    return BatchedRows(rows, length_sorted_batches(prompt_lengths(rows), batch_size, max_tokens, world_size))


def in_file_order(predictions: list[dict[str, str]], ids: Sequence[str]) -> list[dict[str, str]]:
    """`predictions` ordered as the split's questions `ids`; any id not among them follows, in
    the order it came."""
    position: dict[str, int] = {qid: i for i, qid in enumerate(ids)}
    last = len(position)

    def key(item: tuple[int, dict[str, str]]) -> tuple[int, int]:
        return position.get(item[1]["id"], last), item[0]

    return [record for _, record in sorted(enumerate(predictions), key=key)]
