"""Each grid point's state, in its own run folder: running, done (with its metrics) or failed.

`grid_state.json` is written atomically by the process that runs the point, so a rerun of the
same grid can tell a done point (skipped), a killed one (``running`` but its owner gone: resumed
from its `last.ckpt`), one another live grid runs (``running``, its heartbeat fresh: refused; see
`lamp_pl.studygrid.owner`) and a failed one (retried) apart, whichever machine ran it.
"""

from __future__ import annotations

import json
import socket
import time
import traceback
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Literal

from lamp_pl.cache import write_text_atomic

STATE_FILE = "grid_state.json"
LOG_FILE = "point.log"
Status = Literal["pending", "running", "done", "failed"]


@dataclass
class PointState:
    """What a run folder records about its grid point."""

    status: Status = "pending"
    attempts: int = 0
    """Times a process started the point (a resume or retry adds one)."""
    host: str = ""
    pid: int = 0
    started: float = 0.0
    seconds: float = 0.0
    """Wall time of the last attempt."""
    error: str = ""
    """The last line of the error of a failed attempt."""
    resumed_from: str = ""
    """The `last.ckpt` the last attempt resumed training from, if any."""
    metrics: dict[str, float] = field(default_factory=dict)
    predictions: str = ""
    """The test predictions file the metrics were computed from."""
    samples: int = 0
    """Training samples seen plus test questions (for the dry run's device-hour estimate)."""
    heartbeat: float = 0.0
    """When the running process last said it is alive (see `lamp_pl.studygrid.owner`)."""

    @property
    def done(self) -> bool:
        return self.status == "done"


def read_state(run_dir: str | Path) -> PointState:
    """The state recorded in `run_dir` (``pending`` when none was written or it is unreadable)."""
    path = Path(run_dir) / STATE_FILE
    try:
        document = json.loads(path.read_text())
    except (OSError, ValueError):
        return PointState()
    known = PointState.__dataclass_fields__
    return PointState(**{key: value for key, value in document.items() if key in known})


def write_state(run_dir: str | Path, state: PointState) -> Path:
    """Record `state` in `run_dir` (atomically: a reader never sees half a file)."""
    Path(run_dir).mkdir(parents=True, exist_ok=True)
    return write_text_atomic(Path(run_dir) / STATE_FILE, json.dumps(asdict(state), indent=1))


def mark_running(run_dir: str | Path, previous: PointState, resumed_from: str = "") -> PointState:
    """Record that this process starts the point (one attempt more than before)."""
    import os

    state = PointState(
        status="running",
        attempts=previous.attempts + 1,
        host=socket.gethostname(),
        pid=os.getpid(),
        started=time.time(),
        resumed_from=resumed_from,
        heartbeat=time.time(),
    )
    write_state(run_dir, state)
    return state


def mark_done(
    run_dir: str | Path, state: PointState, metrics: dict[str, float], predictions: str, samples: int
) -> PointState:
    """Record the point's test metrics: later runs of the grid skip it."""
    state.status, state.metrics, state.predictions, state.samples = "done", metrics, predictions, samples
    state.seconds, state.error = round(time.time() - state.started, 3), ""
    write_state(run_dir, state)
    return state


def error_line(error: BaseException) -> str:
    """One line for a failed point: the exception's type and the last line of its message."""
    text = "".join(traceback.format_exception_only(type(error), error)).strip().splitlines()
    return text[-1] if text else type(error).__name__


def mark_failed(run_dir: str | Path, state: PointState, error: BaseException | str) -> PointState:
    """Record why the point failed: a rerun of the grid retries it."""
    state.status = "failed"
    state.error = error if isinstance(error, str) else error_line(error)
    state.seconds = round(time.time() - state.started, 3)
    write_state(run_dir, state)
    return state


def describe(state: PointState) -> dict[str, Any]:
    """The fields a table row shows for a point that has no metrics (failed or not run)."""
    return {"status": state.status, "error": state.error}


__all__ = [
    "LOG_FILE",
    "STATE_FILE",
    "PointState",
    "describe",
    "error_line",
    "mark_done",
    "mark_failed",
    "mark_running",
    "read_state",
    "write_state",
]
