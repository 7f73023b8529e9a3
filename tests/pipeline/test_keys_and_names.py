"""Caches keyed by everything that shapes them (and nothing else); task names that stay plain."""

from __future__ import annotations

import dataclasses
import json
import os
import shutil
from pathlib import Path

import pytest

import lamp_pl.cache
import lamp_pl.pipeline.data
from helpers import bm25_data
from lamp_pl.cache import file_sha256_by_state
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.pipeline.tokenized import TokenizedSplit
from lamp_pl.retrieval import RetrievalConfig
from lamp_pl.tasks import Task, get_task, register_task


def datamodule(data_dir: Path, cache: Path, tokenizer: Path, task: str = "LaMP_2", **overrides) -> LaMPDataModule:
    splits = dict.fromkeys(("train_split", "val_split", "test_split", "predict_split"), "dev")
    return LaMPDataModule(**bm25_data(data_dir, cache, tokenizer, task, **{**splits, **overrides}))


@pytest.fixture
def builds(monkeypatch) -> list[str]:
    """The prompt caches built (their folder names) while the test runs."""
    built: list[str] = []
    real = TokenizedSplit.build.__func__

    def counting(cls, folder, *args, **kwargs):
        built.append(Path(folder).name)
        return real(cls, folder, *args, **kwargs)

    monkeypatch.setattr(TokenizedSplit, "build", classmethod(counting))
    return built


@pytest.fixture
def data(data_root, tmp_path) -> Path:
    shutil.copytree(data_root / "LaMP_2", tmp_path / "data" / "LaMP_2")
    return tmp_path / "data"


def test_unrelated_changes_reuse_the_prompt_cache(data, tiny_t5, tmp_path, builds):
    base = datamodule(data, tmp_path / "cache", tiny_t5)
    base.prepare_data()
    assert len(builds) == 1
    for change in ({"batch_size": 3}, {"eval_batch_size": 5}, {"seed": 7}, {"num_workers": 0}):
        datamodule(data, tmp_path / "cache", tiny_t5, **change).prepare_data()
    questions = data / "LaMP_2" / "dev_questions.json"
    os.utime(questions, ns=(questions.stat().st_atime_ns, questions.stat().st_mtime_ns + 10**9))  # same content
    datamodule(data, tmp_path / "cache", tiny_t5).prepare_data()
    assert len(builds) == 1, builds


def test_a_changed_tokenizer_file_rebuilds(data, tiny_t5, tmp_path, builds):
    tokenizer = Path(shutil.copytree(tiny_t5, tmp_path / "tok"))
    datamodule(data, tmp_path / "cache", tokenizer).prepare_data()
    config = tokenizer / "tokenizer_config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "lamp_pl_test": 1}))  # same name, new files
    datamodule(data, tmp_path / "cache", tokenizer).prepare_data()
    (tokenizer / "model.safetensors").write_bytes(b"")  # weights tokenize nothing: no rebuild
    datamodule(data, tmp_path / "cache", tokenizer).prepare_data()
    assert len(builds) == 2 and builds[0] != builds[1]


def test_a_new_cache_format_rebuilds(data, tiny_t5, tmp_path, builds, monkeypatch):
    datamodule(data, tmp_path / "cache", tiny_t5).prepare_data()
    monkeypatch.setattr(lamp_pl.pipeline.data, "PROMPT_CACHE_FORMAT", lamp_pl.pipeline.data.PROMPT_CACHE_FORMAT + 1)
    datamodule(data, tmp_path / "cache", tiny_t5).prepare_data()
    assert len(builds) == 2


def test_an_encoder_replaced_in_place_rebuilds_index_results_and_prompts(data, tiny_t5, tiny_bert, tmp_path, builds):
    encoder = Path(shutil.copytree(tiny_bert, tmp_path / "encoder"))
    dense = {"retrieval": RetrievalConfig(retriever="contriever", encoder=str(encoder), k_max=4)}
    datamodule(data, tmp_path / "cache", tiny_t5, **dense).prepare_data()
    config = encoder / "config.json"
    config.write_text(json.dumps({**json.loads(config.read_text()), "lamp_pl_test": 1}))
    datamodule(data, tmp_path / "cache", tiny_t5, **dense).prepare_data()
    assert len(builds) == 2 and builds[0] != builds[1]


def spec_file(path: Path, **changes) -> Path:
    spec = {**dataclasses.asdict(get_task("LaMP_2")), "name": "MyTask", "output_task_names": ["LaMP_2"], **changes}
    path.write_text(json.dumps(spec))
    return path


def test_two_custom_specs_with_one_name_never_share_a_cache(data, tiny_t5, tmp_path, builds):
    shutil.copytree(data / "LaMP_2", data / "MyTask")
    first = spec_file(tmp_path / "first.json")
    second = spec_file(tmp_path / "second.json", item_template='the label of "{free}" is "{tag}" ')
    prompts = {}
    for spec in (first, second, first):
        dm = datamodule(data, tmp_path / "cache", tiny_t5, task=str(spec))
        dm.prepare_data()
        prompts[spec.name] = dm.prompts("dev")
    assert len(builds) == 2, "the first spec's cache is reused, the second has its own"
    assert prompts["first.json"] != prompts["second.json"]
    assert get_task(str(first)).cache_name != get_task(str(second)).cache_name


def test_a_custom_spec_can_not_replace_a_builtin_task(tmp_path):
    spec = spec_file(tmp_path / "spec.json", name="LaMP_2", description="not the benchmark's")
    with pytest.raises(ValueError, match="built-in task"):
        get_task(str(spec))
    assert get_task("LaMP_2").description != "not the benchmark's"


@pytest.mark.parametrize("name", ["../../etc", "a/b", "a\\b", "..", ".", "", "   ", "x\ny", "nul\x00"])
def test_a_task_name_that_is_not_a_plain_file_name_is_rejected(name, tmp_path):
    with pytest.raises(ValueError, match="plain file name"):
        get_task(str(spec_file(tmp_path / "spec.json", name=name)))
    with pytest.raises(ValueError, match="plain file name"):
        register_task(Task(name, "", ("text",), ("text",), ":", "generation"))
    assert not list(tmp_path.glob("**/*etc*")), "no path was built from the name"


def test_data_file_hashes_are_computed_once_per_file_state(tmp_path, monkeypatch):
    calls: list[Path] = []
    real = lamp_pl.cache.file_sha256
    monkeypatch.setattr(lamp_pl.cache, "file_sha256", lambda path: calls.append(path) or real(path))
    data = tmp_path / "questions.json"
    data.write_text("[]")
    store = tmp_path / "store"
    first = file_sha256_by_state(data, store)
    assert file_sha256_by_state(data, store) == first and len(calls) == 1, "a second reader reads the sidecar"
    os.utime(data, ns=(data.stat().st_atime_ns, data.stat().st_mtime_ns + 10**9))
    assert file_sha256_by_state(data, store) == first and len(calls) == 2, "a new mtime is a new file state"
    next(store.iterdir()).write_text("{damaged")
    assert file_sha256_by_state(data, store) == first and len(calls) == 3
    data.write_text("[1]")
    assert file_sha256_by_state(data, store) != first
