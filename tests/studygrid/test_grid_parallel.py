"""The grid's points run concurrently on local CPU workers with the results of a sequential run,
and a killed grid resumes: done points are not rerun, the killed one resumes from last.ckpt."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import time

import pytest
from grid_helpers import grid_args, grid_process, run_grid_here, table

from lamp_pl.cli import main
from lamp_pl.studygrid.owner import process_exists
from lamp_pl.studygrid.state import LOG_FILE, read_state

AXES = ["--retriever", "bm25", "random", "--k", "1", "2"]


def test_four_points_on_two_workers_match_a_sequential_run(tiny_t5, data_root, tmp_path):
    parallel, sequential = tmp_path / "parallel", tmp_path / "sequential"
    run_grid_here(grid_args(tiny_t5, data_root, tmp_path, parallel, *AXES, "--workers", "2", "--no_plots"))
    output = run_grid_here(grid_args(tiny_t5, data_root, tmp_path, sequential, *AXES, "--workers", "1", "--no_plots"))
    assert "4 points, 4 runs, 0 done, 4 to run" in output
    rows = table(parallel / "results.csv")
    assert len(rows) == 4 and all(row["rouge-1"] != "" for row in rows)
    assert rows == table(sequential / "results.csv")
    for row in rows:  # the generated texts themselves, not only their scores
        name = f"retriever={row['retriever']}-k={row['k']}"
        predicted = [json.loads(p.read_text()) for p in sorted((parallel / name).rglob("predictions_test.json"))]
        assert predicted == [
            json.loads(p.read_text()) for p in sorted((sequential / name).rglob("predictions_test.json"))
        ]

    # Two worker processes took two points each, at the same time; the sequential grid had one.
    def states(folder):
        return [read_state(folder / f"retriever={row['retriever']}-k={row['k']}") for row in rows]

    assert len({s.pid for s in states(parallel)}) == 2 and len({s.pid for s in states(sequential)}) == 1
    spans = sorted((s.started, s.started + s.seconds) for s in states(parallel))
    assert any(later[0] < earlier[1] for earlier, later in zip(spans, spans[1:]))


def test_killed_grid_resumes_and_matches_an_uninterrupted_one(tiny_t5, data_root, tmp_path, capsys):
    """kill -9 of the grid's process alone: its worker dies with it (no point runs on unowned),
    a second grid over the same points is refused while it runs, and the rerun resumes."""
    two_epochs = ["--trainer.max_epochs", "2", "--retriever", "bm25", "random", "--workers", "1", "--no_plots"]
    reference, killed = tmp_path / "reference", tmp_path / "killed"
    run_grid_here(grid_args(tiny_t5, data_root, tmp_path, reference, *two_epochs))
    args = grid_args(tiny_t5, data_root, tmp_path, killed, *two_epochs)
    first, second = killed / "retriever=bm25", killed / "retriever=random"
    process = grid_process(args)
    deadline = time.time() + 240
    while not (read_state(second).status == "running" and list(second.rglob("last.ckpt"))):
        assert process.poll() is None and time.time() < deadline, "the grid ended before it could be killed"
        time.sleep(0.05)
    with pytest.raises(SystemExit) as refused:  # a second grid over the same points, meanwhile
        main(["grid", *args])
    busy = capsys.readouterr().err.strip()
    assert refused.value.code == 2 and len(busy.splitlines()) == 1 and str(second) in busy, busy
    worker = read_state(second).pid
    os.kill(process.pid, signal.SIGKILL)  # the grid alone, mid-way through the second point
    process.wait()
    deadline = time.time() + 5
    while process_exists(worker) and time.time() < deadline:
        time.sleep(0.05)
    alive = process_exists(worker)
    with contextlib.suppress(ProcessLookupError):  # never leave a worker behind, even on failure
        os.killpg(process.pid, signal.SIGKILL)
    assert not alive, "the grid's worker outlived it"
    assert read_state(first).done and read_state(second).status == "running"
    untouched = {p: p.stat().st_mtime_ns for p in [first / LOG_FILE, *first.rglob("*.json"), *first.rglob("*.ckpt")]}

    output = run_grid_here(args)
    assert "2 points, 2 runs, 1 done, 1 to run" in output
    assert {p: p.stat().st_mtime_ns for p in untouched} == untouched
    assert read_state(first).attempts == 1
    resumed = read_state(second)
    assert resumed.done and resumed.attempts == 2 and resumed.resumed_from.endswith("last.ckpt")
    assert "resuming" in (second / LOG_FILE).read_text()
    assert table(killed / "results.csv") == table(reference / "results.csv")
    assert (
        json.loads((second / "grid_state.json").read_text())["metrics"] == read_state(reference / second.name).metrics
    )


def test_failing_cache_build_starts_no_point(tmp_path):
    """The workers start while the caches are built; when building fails, no point runs."""
    from lamp_pl.studygrid.launchers import Slot, run_local
    from lamp_pl.studygrid.worker import PointJob

    jobs = [PointJob(f"p{i}", str(tmp_path / f"p{i}"), [], False, entry="lamp_pl.cli:main") for i in range(2)]
    finished: list[str] = []

    def build() -> None:
        raise RuntimeError("building a cache failed")

    with pytest.raises(RuntimeError, match="building a cache failed"):
        run_local(jobs, [Slot(), Slot()], lambda job, state: finished.append(job.name), build, warm=("json",))
    assert finished == [] and not any(read_state(tmp_path / job.name).attempts for job in jobs)


def test_a_point_s_logging_goes_to_its_own_log(tmp_path):
    """Lightning's console lines (logging handlers made before the point) land in point.log."""
    import logging

    from lamp_pl.studygrid.worker import _logging_to

    handler = logging.StreamHandler()
    logger = logging.getLogger("lamp_pl_test_point_logging")
    logger.addHandler(handler)
    console = handler.stream
    try:
        with (tmp_path / LOG_FILE).open("a") as log, _logging_to(log):
            logger.warning("a line of the point")
            earlier = (tmp_path / "earlier.log").open("a")
            handler.stream = earlier  # a handler made during this point, on its log
        assert "a line of the point" in (tmp_path / LOG_FILE).read_text() and handler.stream is console
        handler.stream = earlier
        earlier.close()
        with (tmp_path / "next.log").open("a") as log, _logging_to(log):  # its old stream is closed now
            logger.warning("a line of the next point")
        assert "a line of the next point" in (tmp_path / "next.log").read_text()
    finally:
        logger.removeHandler(handler)
