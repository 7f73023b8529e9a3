"""Run one grid point in this process: fit (resuming a killed attempt), test, record the state.

The same function runs a point for every launcher: in a local worker process and inside a
submitit job. It never raises for
the point's own failure: that is recorded in the run folder (see `lamp_pl.studygrid.state`) so
the other points go on.
"""

from __future__ import annotations

import contextlib
import json
import sys
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import TextIO

from lamp_pl.studygrid.owner import busy_message, claim, heartbeat
from lamp_pl.studygrid.state import LOG_FILE, PointState, mark_done, mark_failed, mark_running, read_state


@dataclass(frozen=True)
class PointJob:
    """Everything a worker needs to run one point (plain data: pickled by submitit, JSON locally)."""

    name: str
    run_dir: str
    args: list[str]
    """The `fit`/`test` arguments (configs, overrides, run folder)."""
    fit: bool
    threads: int = 0
    """Torch threads for the point (0: leave as the environment says)."""
    samples: int = 0
    """Training samples plus test questions, recorded for the dry run's estimate."""
    predict: bool = False
    """Also write predictions on the predict split (a leaderboard's test questions, no golds)."""
    entry: str = ""
    """`module:function` that runs one lamp-pl command (argv -> exit status): the command floor
    hands in its own `main`, so this library never imports the floor."""


def load_entry(entry: str) -> Callable[[list[str]], int | None]:
    """The command runner named by `entry` (`module:function`)."""
    import importlib

    module, _, name = entry.partition(":")
    if not module or not name:
        raise ValueError(f"a grid job needs its command runner as 'module:function', got {entry!r}")
    return getattr(importlib.import_module(module), name)


def newest(folder: Path, pattern: str) -> Path | None:
    """The most recently written file under `folder` matching `pattern`, if any."""
    found = sorted(folder.rglob(pattern), key=lambda p: p.stat().st_mtime_ns)
    return found[-1] if found else None


@contextlib.contextmanager
def _logging_to(log: TextIO) -> Iterator[None]:
    """Send every logging stream handler (Lightning's console lines) to `log` for a while.

    A worker runs point after point and imports Lightning once, whose handlers hold the stream
    they were made with: redirecting `sys.stdout` alone would leave them on the console (or on an
    earlier point's closed log)."""
    import logging

    known = list(logging.root.manager.loggerDict.values())  # placeholders have no handlers
    loggers = [logging.getLogger(), *(lg for lg in known if isinstance(lg, logging.Logger))]
    handlers = {h for lg in loggers for h in lg.handlers if type(h) is logging.StreamHandler}
    before = {handler: handler.stream for handler in handlers}
    for handler in handlers:  # not setStream: it flushes the old stream, maybe a closed log
        handler.stream = log
    try:
        yield
    finally:
        for handler, stream in before.items():
            handler.stream = sys.__stderr__ if getattr(stream, "closed", False) else stream


def _train_and_test(job: PointJob, resume: Path | None) -> None:
    main = load_entry(job.entry)

    def call(argv: list[str]) -> None:
        code = main(argv)
        if code not in (0, None):
            raise RuntimeError(f"lamp-pl {argv[0]} exited with status {code}")

    if job.fit:
        call(["fit", *job.args, *(["--ckpt_path", str(resume)] if resume else [])])
        call(["test", *job.args, "--ckpt_path", "best"])
    else:
        call(["test", *job.args])
    if job.predict:
        call(["predict", *job.args, *(["--ckpt_path", "best"] if job.fit else [])])


def run_point(job: PointJob) -> dict:
    """Run `job` unless its run folder says it is done; return its recorded state as a dict.

    A point whose last attempt was killed (``running``, its owner gone) or failed resumes
    training from its newest `last.ckpt` when there is one; a point whose test was the part that
    did not finish reruns only from that checkpoint's epoch, so the result equals an
    uninterrupted run's. The point's lock is held and its heartbeat written throughout (see
    `lamp_pl.studygrid.owner`); a point another process holds is left to it and reported as such.
    """
    run_dir = Path(job.run_dir)
    with claim(run_dir) as claimed:
        previous = read_state(run_dir)
        if not claimed:
            return asdict(replace(previous, status="failed", error=busy_message(job.name, previous)))
        if previous.done:
            return asdict(previous)
        return asdict(_attempt(job, run_dir, previous))


def _attempt(job: PointJob, run_dir: Path, previous: PointState) -> PointState:
    """One attempt at `job` (the caller holds its lock): fit, test, record done or failed."""
    last = newest(run_dir, "last*.ckpt") if job.fit and previous.status in ("running", "failed") else None
    started = newest(run_dir, "metrics_*.json")
    state = mark_running(run_dir, previous, str(last or ""))
    if job.threads:
        import torch

        torch.set_num_threads(job.threads)
    try:
        with (
            heartbeat(run_dir, state),
            (run_dir / LOG_FILE).open("a") as log,
            contextlib.redirect_stdout(log),
            contextlib.redirect_stderr(log),
            _logging_to(log),
        ):
            print(f"lamp-pl grid: point {job.name}, attempt {state.attempts}" + (f", resuming {last}" if last else ""))
            _train_and_test(job, last)
        metrics = newest(run_dir, "metrics_*.json")
        if metrics is None or metrics == started and started is not None:
            raise RuntimeError(f"grid point {job.name} wrote no new metrics under {run_dir}")
        predictions = metrics.with_name(metrics.name.replace("metrics_", "predictions_", 1))
        values = {key.split("/", 1)[-1]: value for key, value in json.loads(metrics.read_text()).items()}
        return mark_done(run_dir, state, values, str(predictions), job.samples)
    except (Exception, SystemExit) as error:  # one failing point never stops the others
        return mark_failed(run_dir, state, error)


__all__ = ["PointJob", "newest", "run_point"]
