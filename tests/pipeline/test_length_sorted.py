"""Evaluation batches sorted by prompt length give the same predictions file as file order."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from helpers import CONF
from lamp_pl.cli import main
from lamp_pl.cli.config import datamodule_from_config
from lamp_pl.pipeline.batching import in_file_order, length_sorted_batches


def test_batches_sorted_longest_first_and_bounded_by_tokens():
    lengths = [3, 9, 1, 9, 5, 7, 2]
    assert length_sorted_batches(lengths, 3) == [[1, 3, 5], [4, 0, 6], [2]]
    # 20 padded tokens: two rows of width 9, two of width 7, then three of width 3.
    assert length_sorted_batches(lengths, 3, max_tokens=20) == [[1, 3], [5, 4], [0, 6, 2]]
    assert length_sorted_batches([50, 4], 8, max_tokens=10) == [[0], [1]]  # too long: alone
    with pytest.raises(ValueError, match="max_tokens"):
        length_sorted_batches(lengths, 3, max_tokens=0)


def test_in_file_order_restores_the_split_order():
    records = [{"id": i, "output": i.upper()} for i in ["c", "a", "x", "b"]]
    assert [r["id"] for r in in_file_order(records, ["a", "b", "c"])] == ["a", "b", "c", "x"]


def _predictions(tmp_path: Path, args: list[str], command: str) -> tuple[str, Path]:
    main([command, *args, "--trainer.default_root_dir", str(tmp_path)])
    (path,) = tmp_path.rglob("predictions_train.json")
    return path.read_text(), path


@pytest.fixture(scope="module")
def talkative_t5(tiny_t5, tmp_path_factory) -> Path:
    """The tiny T5 with larger random weights and its special tokens suppressed: outputs of
    `max_new_tokens` tokens that differ from prompt to prompt (the tiny model's own greedy output is
    an empty string for every prompt, which any batching would reproduce)."""
    import torch
    from transformers import T5ForConditionalGeneration

    folder = tmp_path_factory.mktemp("talkative") / "t5"
    shutil.copytree(tiny_t5, folder)
    model = T5ForConditionalGeneration.from_pretrained(tiny_t5)
    torch.manual_seed(0)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.normal_(0, 0.5)
    model.generation_config.suppress_tokens = [model.config.pad_token_id, model.config.eos_token_id, 2]
    model.save_pretrained(folder)
    return folder


@pytest.mark.parametrize("command", ["test", "predict"])
def test_sorted_generation_gives_the_file_order_predictions(command, talkative_t5, data_root, tmp_path):
    tiny_t5 = talkative_t5
    # The train split (12 questions with golds) as the split tested and predicted.
    data = ["--data.task", "LaMP_4", "--data.data_dir", str(data_root), "--data.cache_dir", str(tmp_path / "cache")]
    data += ["--data.tokenizer", str(tiny_t5), "--data.eval_batch_size", "3"]
    data += ["--data.test_split", "train", "--data.predict_split", "train", "--data.max_input_length", "512"]
    model = ["--model.model_name_or_path", str(tiny_t5), "--model.num_beams", "1", "--model.max_new_tokens", "12"]
    args = ["--config", str(CONF), *data, *model]
    file_order, _ = _predictions(tmp_path / "file", [*args, "--data.eval_order", "file"], command)
    by_count, path = _predictions(tmp_path / "length", [*args, "--data.eval_order", "length"], command)
    by_tokens, _ = _predictions(
        tmp_path / "tokens", [*args, "--data.eval_order", "length", "--data.eval_max_tokens", "150"], command
    )
    assert by_count == file_order
    outputs = [record["output"] for record in json.loads(file_order)["golds"]]
    assert all(outputs) and len(set(outputs)) > 1  # real, prompt-dependent generations
    assert by_tokens == file_order

    # Not a vacuous comparison: the sorted loader batched other rows together than file order did.
    datamodule = datamodule_from_config([str(CONF)], [*data, "--data.eval_order", "length"])
    datamodule.load("test")
    rows = datamodule.datasets["train"]
    sorted_ids = [batch["ids"] for batch in datamodule.loader(datamodule.test_split)]
    assert sorted_ids != [rows.ids[i : i + 3] for i in range(0, len(rows), 3)]
    assert sorted(sum(sorted_ids, [])) == sorted(rows.ids)
    written = [record["id"] for record in json.loads(path.read_text())["golds"]]
    assert written == rows.ids
