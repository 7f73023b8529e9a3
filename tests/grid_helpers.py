"""Shared pieces of the grid tests: a tiny grid's command line and reading its tables."""

from __future__ import annotations

import contextlib
import csv
import io
import os
import signal
import subprocess
import sys
from pathlib import Path

from helpers import base_args

REPO = Path(__file__).resolve().parents[1]
# One epoch of two batches, a few test questions: a point trains and tests in seconds.
FAST = ["--trainer.limit_test_batches", "2", "--trainer.limit_val_batches", "1"]


def grid_args(tiny_t5: Path, data_root: Path, tmp_path: Path, out: Path, *more: str, task: str = "LaMP_5") -> list[str]:
    """`lamp-pl grid` arguments of a tiny grid of `task` (LaMP-5: ROUGE is never all zero) in `out` (caches in `tmp_path/cache`)."""
    return [*base_args(tiny_t5, data_root, tmp_path / "cache", task), *FAST, "--out", str(out), *more]


def grid_process(args: list[str]) -> subprocess.Popen:
    """`lamp-pl grid` in its own process group (so a test can kill it with its workers)."""
    env = dict(os.environ, PYTHONPATH=str(REPO), OMP_NUM_THREADS="1", MKL_NUM_THREADS="1")
    command = [sys.executable, "-c", "import sys; from lamp_pl.cli import main; sys.exit(main())", "grid", *args]
    return subprocess.Popen(command, env=env, start_new_session=True, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


def run_grid(args: list[str], timeout: float = 600) -> str:
    """Run `lamp-pl grid` to its end in a subprocess; return its output (fail on a non-zero exit).
    The Slurm launcher's test keeps it: run in-process under pytest-xdist, that grid left the
    worker's captured output closed for every later test."""
    process = grid_process(args)
    try:
        output, _ = process.communicate(timeout=timeout)
    finally:
        if process.poll() is None:  # timed out: stop the grid and its workers
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()
    text = output.decode()
    assert process.returncode == 0, text[-3000:]
    return text


def run_grid_here(args: list[str]) -> str:
    """Run a local `lamp-pl grid` to its end in this process, as `main(["grid", ...])` (its points
    still run in the grid's own spawned worker processes); return what it printed (fail on a
    non-zero exit). In-process, a grid costs no interpreter start-up of its own."""
    from lamp_pl.cli import main

    printed = io.StringIO()
    threads = {key: os.environ.get(key) for key in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    os.environ.update(dict.fromkeys(threads, "1"))  # the workers' threads, as grid_process sets them
    try:
        with contextlib.redirect_stdout(printed), contextlib.redirect_stderr(printed):
            try:
                code = main(["grid", *args])
            except SystemExit as exit_:
                code = exit_.code
    finally:
        for key, value in threads.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
    text = printed.getvalue()
    assert code in (0, None), text[-3000:]
    return text


def table(path: Path) -> list[dict[str, str]]:
    """The rows of a grid's CSV table."""
    with path.open() as stream:
        return list(csv.DictReader(stream))
