"""Length-sorted evaluation batches under DDP: every rank gets its share, and 2 gloo ranks write the
file-order predictions file.

The crash this guards against: sorting cut the split into batches first and dealt the batches to
the ranks, so a split that fitted in one batch left rank 1 with no batch at all; Lightning then
stops rank 1 (`DataLoader within local rank has zero length`) while rank 0 waits in the
collectives of `on_test_epoch_end` (gloo: "Connection closed by peer"), as tests/contracts/test_ddp.py did
on LaMP-2's 4 test questions in batches of 4.
"""

from __future__ import annotations

import json

import pytest
from test_length_sorted import talkative_t5  # noqa: F401 -- the fixture, shared with the one-process test

from helpers import CONF, run_cli
from lamp_pl.cli import main
from lamp_pl.cli.config import datamodule_from_config
from lamp_pl.pipeline.batching import BatchedRows, length_sorted_batches
from lamp_pl.pipeline.sharding import UnpaddedShards


def rank_batches(lengths: list[int], batch_size: int, max_tokens: int | None, world_size: int) -> list[list[list[int]]]:
    """Each rank's batches, as its `UnpaddedShards` sampler hands them out."""
    batches = BatchedRows(list(range(len(lengths))), length_sorted_batches(lengths, batch_size, max_tokens, world_size))
    return [[batches[i] for i in UnpaddedShards(batches, world_size, rank)] for rank in range(world_size)]


@pytest.mark.parametrize("world_size", [2, 3])
@pytest.mark.parametrize(("batch_size", "max_tokens"), [(4, None), (12, None), (5, None), (1, None), (8, 30)])
@pytest.mark.parametrize("rows", [4, 7, 12, 13])
def test_every_rank_gets_the_same_number_of_batches_of_its_own_rows(rows, batch_size, max_tokens, world_size):
    lengths = [(7 * i) % 11 + 1 for i in range(rows)]
    ranks = rank_batches(lengths, batch_size, max_tokens, world_size)
    every = [row for batches in ranks for batch in batches for row in batch]
    assert sorted(every) == list(range(rows)), "each row once"
    assert all(batch for batches in ranks for batch in batches), "no empty batch"
    steps = [len(batches) for batches in ranks]
    shares = [len(range(rank, rows, world_size)) for rank in range(world_size)]
    assert all(steps), "a rank without a batch skips the evaluation loop and its collectives"
    # The same number of steps on every rank, but where a rank has fewer rows than that: one each.
    assert all(s == max(steps) or s == shares[r] for r, s in enumerate(steps)), (steps, shares)
    for batches in ranks:
        widths = [max(lengths[i] for i in batch) for batch in batches]
        assert widths == sorted(widths, reverse=True), "each rank's batches run longest first"
        assert all(len(batch) <= batch_size for batch in batches)
        if max_tokens is not None:
            assert all(len(b) * w <= max_tokens or len(b) == 1 for b, w in zip(batches, widths))


def test_a_split_of_one_batch_is_shared_by_both_ranks():
    """The shape of the crash: 4 questions, batches of 4, 2 ranks (the old layout: [[rows]], []).
    Rank r takes the r-th, (r + 2)-th, ... longest prompt."""
    assert rank_batches([5, 9, 7, 3], 4, None, 2) == [[[1, 0]], [[2, 3]]]
    assert length_sorted_batches([5, 9, 7, 3], 4) == [[1, 2, 0, 3]], "one process: unchanged"


def run_ddp(args: list[str]) -> None:
    """`python cli.py ...` on 2 CPU ranks, in a fresh process (DDP's launcher re-executes the script)."""
    ddp = ["--trainer.accelerator", "cpu", "--trainer.devices", "2", "--trainer.strategy", "ddp"]
    run_cli([*args, *ddp], timeout=400, OMP_NUM_THREADS="1")


def test_two_ranks_write_the_file_order_predictions_with_sorted_batches(talkative_t5, data_root, tmp_path):  # noqa: F811 -- the fixture
    """The 12 questions of LaMP-4's train split in batches of 12 (one batch when sorted on one
    process: the shape that crashed), greedy, outputs that differ from prompt to prompt: file order
    on one process, then file order and sorted batches on 2 ranks, give one and the same file (and
    metrics). Token-bounded batches are laid out as count-bounded ones (checked on the loaders
    here) and give the file-order predictions on one process (tests/pipeline/test_length_sorted.py)."""
    data = ["--data.task", "LaMP_4", "--data.data_dir", str(data_root), "--data.cache_dir", str(tmp_path / "cache")]
    data += ["--data.tokenizer", str(talkative_t5), "--data.eval_batch_size", "12", "--data.test_split", "train"]
    data += ["--data.max_input_length", "512"]
    model = ["--model.model_name_or_path", str(talkative_t5), "--model.num_beams", "1", "--model.max_new_tokens", "8"]

    def args(name: str, *extra: str) -> list[str]:
        return [
            "test",
            "--config",
            str(CONF),
            *data,
            *model,
            *extra,
            "--trainer.default_root_dir",
            str(tmp_path / name),
        ]

    main(args("one", "--data.eval_order", "file"))
    # Not a vacuous comparison: one batch per rank by count, several by tokens, rank 1 never idle.
    for extra, least in (([], 1), (["--data.eval_max_tokens", "300"], 2)):
        pipeline = datamodule_from_config([str(CONF)], [*data, "--data.eval_order", "length", *extra])
        pipeline.load("test")
        counts = [len(pipeline.loader("train", rank=rank, world_size=2)) for rank in (0, 1)]
        assert counts[0] == counts[1] >= least, counts
    run_ddp(args("ddp_file", "--data.eval_order", "file"))
    run_ddp(args("ddp_length", "--data.eval_order", "length"))

    def written(name: str, kind: str) -> str:
        (path,) = (tmp_path / name).rglob(f"{kind}_train.json")
        return path.read_text()

    reference = written("one", "predictions")
    outputs = [record["output"] for record in json.loads(reference)["golds"]]
    assert len(outputs) == 12 and all(outputs) and len(set(outputs)) > 1  # real, prompt-dependent generations
    for name in ("ddp_file", "ddp_length"):
        assert written(name, "predictions") == reference, name
        assert written(name, "metrics") == written("one", "metrics"), name
