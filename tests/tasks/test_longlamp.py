"""LongLaMP read with `datasets` from local folders in the published schema, validated, retrieved,
prompted, trained end to end on a tiny model and scored with LongLaMP's metrics.

The folders are written by `datasets.save_to_disk` in this test (no network): records
``name, input, output, profile[{abstract, id, title, year}]`` (abstract generation) and
``reviewerId, input, output, profile[{description, overall, reviewText, summary}]`` (reviews).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from longform_helpers import LONGLAMP_METRICS, bm25_module, published, save_broken, tiny_t5_on, tiny_trainer

from lamp_pl.cli.evaluate import evaluate
from lamp_pl.data.hub import DatasetSource, materialize
from lamp_pl.data.lamp import LaMPDataError, load_split
from lamp_pl.demo.longform import write_longlamp
from lamp_pl.lightning.module import LaMPModel
from lamp_pl.tasks import get_task

ABSTRACTS = "LongLaMP_abstract_generation_user"


@pytest.fixture(scope="module")
def hub_copy(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("longlamp")
    write_longlamp(root, "abstract_generation_user", users=20, profile_size=4, words=18)
    write_longlamp(root, "product_review_user", users=10, profile_size=3, words=12)
    return root


def test_local_copy_reads_as_lamp_questions(hub_copy: Path, tmp_path: Path) -> None:
    task = get_task(ABSTRACTS)
    folder = materialize(DatasetSource(str(hub_copy)), task, tmp_path)
    assert materialize({"dataset": str(hub_copy)}, task, tmp_path) == folder  # keyed by the fingerprints
    assert json.loads((folder / "source.json").read_text())["splits"]["dev"]["split"] == "val"
    copy = published(hub_copy, "abstract_generation_user")
    for split, hub in (("train", "train"), ("dev", "val"), ("test", "test")):
        questions = load_split(folder, task, split)
        assert [q.output for q in questions] == copy[hub]["output"]
        assert [q.user for q in questions] == copy[hub]["name"]
    first = load_split(folder, task, "dev")[0]
    assert task.query(first.input) == first.input.split("items:")[1].strip()
    reviews = get_task("LongLaMP_product_review_user")
    item = load_split(materialize(DatasetSource(str(hub_copy)), reviews, tmp_path), reviews, "train")[0].profile[0]
    assert item["overall"] in {f"{n}.0" for n in range(1, 6)} and item["id"].startswith("h")  # no published ids


def test_a_broken_record_is_named(hub_copy: Path, tmp_path: Path) -> None:
    records = published(hub_copy, "abstract_generation_user")["val"].to_list()
    records[2]["profile"][1]["abstract"] = None
    broken = save_broken(hub_copy, "abstract_generation_user", "val", records, tmp_path / "broken")
    with pytest.raises(LaMPDataError) as error:
        materialize(DatasetSource(str(broken)), get_task(ABSTRACTS), tmp_path / "cache")
    message = str(error.value)
    assert "abstract_generation_user] split val" in message and "record 2 (id '2')" in message
    assert "field 'profile[1].abstract'" in message and "got null" in message
    assert not list((tmp_path / "cache").rglob("*_questions.json"))  # nothing half-written is kept


def test_offline_without_a_copy_is_one_line(tmp_path: Path) -> None:
    env = {**os.environ, "HF_DATASETS_OFFLINE": "1", "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf")}
    code = (
        "from lamp_pl.data.hub import materialize; from lamp_pl.tasks import get_task; "
        f"materialize(None, get_task({ABSTRACTS!r}), {str(tmp_path / 'cache')!r})"
    )
    run = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode != 0
    last = run.stderr.strip().splitlines()[-1]
    assert "MissingDataError: LongLaMP/LongLaMP[abstract_generation_user]: not found" in last
    assert "HF_DATASETS_OFFLINE is set" in last and "lamp-pl download --task" in last


def test_fit_test_and_evaluate_end_to_end(hub_copy: Path, tmp_path: Path) -> None:
    task = get_task(ABSTRACTS)
    assert task.max_target_length == task.max_new_tokens == 512  # the long-target presets
    corpus = [r["input"] + " " + r["output"] for r in published(hub_copy, "abstract_generation_user")["train"]]
    model_dir = tiny_t5_on(corpus, tmp_path / "t5")
    data = bm25_module(hub_copy, tmp_path, ABSTRACTS, model_dir, test_split="test")
    assert data.max_target_length == 512
    model = LaMPModel(str(model_dir), task=ABSTRACTS, tokenizer=str(model_dir), num_beams=1, max_new_tokens=12)
    trainer = tiny_trainer(tmp_path)
    trainer.fit(model, datamodule=data)
    prompt = data.prompts("test")[0]
    assert "is the abstract for the title" in prompt and "Use the above abstracts as context" in prompt
    trainer.test(model, datamodule=data)
    predictions = tmp_path / "runs" / "predictions_test.json"
    metrics = json.loads((tmp_path / "runs" / "metrics_test.json").read_text())
    assert {f"test/{name}" for name in LONGLAMP_METRICS} <= set(metrics)
    written = json.loads(predictions.read_text())
    assert sorted(g["id"] for g in written["golds"]) == sorted(q.id for q in load_split(data.data_dir, task, "test"))
    scored = evaluate(ABSTRACTS, Path(data.data_dir) / "test_outputs.json", predictions)
    for name, value in scored.items():
        assert value == pytest.approx(metrics[f"test/{name}"], abs=1e-6)
