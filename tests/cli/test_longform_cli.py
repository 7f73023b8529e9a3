"""LongLaMP and LaMP-QA through the command floor: the grid's task axis runs a LongLaMP task from a
local `datasets.save_to_disk` copy next to a LaMP task (its rows carry LongLaMP's metrics, its
bootstrap interval reads the golds of the copy), and `lamp-pl download` says for every new task
what to fetch and where to put it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from grid_helpers import REPO, grid_args, run_grid_here, table
from longform_helpers import LONGLAMP_METRICS

from lamp_pl.cli import main
from lamp_pl.data.hub import download_help
from lamp_pl.demo.longform import write_longlamp
from lamp_pl.studygrid.axes import data_settings, override_args
from lamp_pl.tasks import benchmark_task_names, get_task
from lamp_pl.tasks.longform import source_of

ABSTRACTS = "LongLaMP_abstract_generation_user"


def test_the_task_axis_sets_a_dataset_source_for_longlamp_and_lamp_qa() -> None:
    assert override_args({"task": "LongLaMP_product_review_user=data/longlamp"}) == [
        "--data.task",
        "LongLaMP_product_review_user",
        "--data.source.dataset",
        "data/longlamp",
        "--data.source.name",
        "product_review_user",
    ]
    # Without a folder the configured dataset stays (a copy holding several configs); the config is the task's.
    qa = {"task": "LaMP_QA_Society_and_Culture"}
    assert override_args(qa)[2:] == ["--data.source.name", "Society_and_Culture"]
    assert data_settings(qa) == {"source_name": "Society_and_Culture"}
    # A LaMP task reads LaMP files, even in a grid whose configs name a dataset.
    assert override_args({"task": "LaMP_5=data/lamp"})[2:] == ["--data.source", "null", "--data.data_dir", "data/lamp"]


def test_a_grid_over_lamp_and_longlamp_tasks(tiny_t5: Path, data_root: Path, tmp_path: Path) -> None:
    hub = write_longlamp(tmp_path / "longlamp", "abstract_generation_user", users=20, profile_size=4).parent
    out = tmp_path / "grid"
    axes = ["--task", f"LaMP_5={data_root}", f"{ABSTRACTS}={hub}", "--k", "0", "1", "--baseline", "k=0"]
    options = ["--no-fit", "--workers", "1", "--no_plots", "--resamples", "50"]  # test only: the data and metrics path
    run_grid_here(grid_args(tiny_t5, data_root, tmp_path, out, *axes, *options))
    rows = {(row["task"], row["k"]): row for row in table(out / "results.csv")}
    assert set(rows) == {(task, k) for task in ("LaMP_5", ABSTRACTS) for k in ("0", "1")}
    for k in ("0", "1"):
        longform = rows[(ABSTRACTS, k)]
        assert all(longform[name] != "" for name in LONGLAMP_METRICS), longform
        run_dir = out / f"task={ABSTRACTS}-k={k}"
        metrics = json.loads(next(run_dir.rglob("metrics_test.json")).read_text())
        assert float(longform["rouge-LSum"]) == pytest.approx(metrics["test/rouge-LSum"])
        predicted = json.loads(next(run_dir.rglob("predictions_test.json")).read_text())
        assert predicted["task"] == ABSTRACTS and len(predicted["golds"]) == 4  # the copy's test users
        assert {"rouge-1", "rouge-L"} <= {name for name, value in rows[("LaMP_5", k)].items() if value != ""}
        assert rows[("LaMP_5", k)]["bleu"] == ""  # LaMP-5 keeps its own metrics
    summary = {(row["task"], row["k"]): row for row in table(out / "summary.csv")}
    interval = summary[(ABSTRACTS, "1")]  # paired over the copy's test questions, read from its cache
    assert float(interval["ci_low"]) <= float(interval["vs_k=0"]) <= float(interval["ci_high"])


def test_download_help_names_what_to_fetch_and_where_for_every_new_task() -> None:
    names = benchmark_task_names()
    assert {ABSTRACTS, "LongLaMP_topic_writing_temporal", "LaMP_QA_Society_and_Culture"} <= set(names)
    for name in names:
        spec, text = source_of(name), download_help(get_task(name))
        assert spec is not None
        assert f"dataset {spec.dataset} (config {spec.name})" in text
        assert f"lamp-pl download --task {name} --dest DIR" in text and f"DIR/{spec.name}" in text
        assert "HF_DATASETS_OFFLINE" in text and "data.source.dataset" in text


def test_download_offline_is_one_line_with_the_help(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(REPO), HF_DATASETS_OFFLINE="1", HF_HUB_OFFLINE="1", HF_HOME=str(tmp_path))
    task, dest = "LaMP_QA_Society_and_Culture", tmp_path / "data"
    command = [sys.executable, "-m", "lamp_pl.cli", "download", "--task", task, "--dest", str(dest)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr[-2000:]
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "alireza7/LaMP-QA[Society_and_Culture]: not found" in lines[0]
    assert download_help(get_task(task)) in lines[0]
    assert not dest.exists() or not any(dest.iterdir())


def test_email_completion_explains_the_avocado_corpus(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    try:
        code = main(["download", "--task", "LongLaMP_email_completion_user", "--dest", str(tmp_path)])
    except SystemExit as exit_:
        code = exit_.code
    assert code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Avocado" in err and "LongLaMP_abstract_generation_*" in err
