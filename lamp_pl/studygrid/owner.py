"""Who runs a grid point, and whether it still does: a point never outlives its grid and never
runs twice at once.

- A local worker dies with the grid that started it: Linux's parent-death signal
  (``prctl(PR_SET_PDEATHSIG, SIGKILL)``) kills it the moment the grid's process ends, even by
  ``kill -9``; elsewhere its heartbeat thread sees its parent gone and ends it within a beat.
- The process running a point holds an exclusive lock on ``<run>/point.lock`` (released by the
  kernel whatever way it ends) and rewrites the point's state every `HEARTBEAT_S` seconds
  (``heartbeat``: the time of the last beat).
- A point whose state says ``running`` is run by a live owner when its heartbeat is fresh and,
  on this host, its process exists; otherwise its owner is gone and a rerun resumes it.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

from lamp_pl.errors import LaMPError
from lamp_pl.studygrid.state import PointState, write_state

HEARTBEAT_S = 2.0
"""Seconds between two beats of a running point."""
STALE_S = 30.0
"""A heartbeat older than this is a dead owner's (the owner on another host: a Slurm job)."""
LOCK_FILE = "point.lock"
_PR_SET_PDEATHSIG = 1  # <linux/prctl.h>
_grid: list[int] = []  # the grid process a local worker dies with (set by `die_with_parent`)


class PointBusyError(LaMPError):
    """A point of the grid is being run by another live grid (or job)."""


def die_with_parent(parent: int) -> None:
    """End this process when `parent` (the grid) ends: the kernel's parent-death signal on Linux;
    if the parent is already gone (it died before the signal was armed), end now."""
    _grid[:] = [parent]
    if sys.platform.startswith("linux"):
        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    if os.getppid() != parent:
        os._exit(1)


def process_exists(pid: int) -> bool:
    """Whether a process `pid` exists on this host and is not a zombie (a dead child no one reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process: it exists
        return True
    with contextlib.suppress(OSError, IndexError):
        stat = Path(f"/proc/{pid}/stat").read_text()
        return stat.rsplit(")", 1)[1].split()[0] != "Z"
    return True


def owner_alive(state: PointState, now: float | None = None) -> bool:
    """Whether the owner of a ``running`` point is alive (see the module's doc)."""
    if state.status != "running":
        return False
    beat = state.heartbeat or state.started
    if (now or time.time()) - beat > STALE_S:
        return False
    return state.host != socket.gethostname() or process_exists(state.pid)


def busy_message(name: str, state: PointState) -> str:
    """The one line refusing to start `name` while its owner runs it."""
    ago = max(0.0, time.time() - (state.heartbeat or state.started))
    return (
        f"point {name} is being run by another grid (pid {state.pid} on {state.host}, heartbeat {ago:.0f} s ago): "
        "wait for it to end, or stop it, then rerun"
    )


@contextlib.contextmanager
def claim(run_dir: Path) -> Iterator[bool]:
    """Hold `run_dir`'s point lock for the block (yields False when another process holds it)."""
    import fcntl

    run_dir.mkdir(parents=True, exist_ok=True)
    with (run_dir / LOCK_FILE).open("a") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            yield False
            return
        except OSError:  # a file system without locks (some network mounts): the heartbeat alone guards
            yield True
            return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


@contextlib.contextmanager
def heartbeat(run_dir: Path, state: PointState) -> Iterator[None]:
    """Rewrite `state` with a fresh ``heartbeat`` every `HEARTBEAT_S` seconds during the block
    (the caller writes the state again only after it); in a local worker, end the process as soon
    as its grid is gone (where no parent-death signal could be armed)."""
    stop = threading.Event()
    parent = _grid[0] if _grid else None

    def beat() -> None:
        while not stop.wait(HEARTBEAT_S):
            if parent is not None and os.getppid() != parent:
                os._exit(1)
            state.heartbeat = time.time()
            with contextlib.suppress(OSError):  # a full disk: the beat is missed, the point goes on
                write_state(run_dir, state)

    thread = threading.Thread(target=beat, name="lamp-pl-heartbeat", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


__all__ = [
    "HEARTBEAT_S",
    "LOCK_FILE",
    "STALE_S",
    "PointBusyError",
    "busy_message",
    "claim",
    "die_with_parent",
    "heartbeat",
    "owner_alive",
    "process_exists",
]
