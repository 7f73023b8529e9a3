"""Two gloo ranks started once and shared by the metric tests (import as `from gloo_helpers import ...`).

Each test used to spawn its own pair of processes (two interpreters importing torch each time);
`GlooRanks` spawns the pair once, joins them in one process group, and then runs one job after
another on both ranks: a job is a module-level function `job(rank, payload)` whose collectives
(`Metric.compute`'s sync) run on the shared group, and whose return value comes back to the test.
"""

from __future__ import annotations

import os
import socket
import traceback
from collections.abc import Callable
from datetime import timedelta
from typing import Any

import torch.multiprocessing as mp

WORLD_SIZE = 2
JOB_TIMEOUT_S = 300  # a job (or a collective waiting for the peer) longer than this has hung


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _rank_loop(rank: int, port: int, jobs: Any, results: Any) -> None:
    """One rank: join the group, then run each job sent to it until told to stop (None)."""
    import torch
    import torch.distributed as dist

    torch.set_num_threads(1)  # two ranks on a 2-core machine, as the DDP tests' OMP_NUM_THREADS=1
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # keep gloo's traffic on loopback
    timeout = timedelta(seconds=JOB_TIMEOUT_S)
    dist.init_process_group(
        "gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=WORLD_SIZE, timeout=timeout
    )
    try:
        while (job := jobs.get()) is not None:
            function, payload = job
            try:
                results.put((rank, True, function(rank, payload)))
            except BaseException:  # reported to the test, which fails with the rank's traceback
                results.put((rank, False, traceback.format_exc()))
    finally:
        dist.destroy_process_group()


class GlooRanks:
    """Two spawned processes in one gloo group, running jobs on both ranks at once."""

    def __init__(self) -> None:
        context = mp.get_context("spawn")
        port = _free_port()
        self._jobs = [context.Queue() for _ in range(WORLD_SIZE)]
        self._results = context.Queue()
        self._processes = [
            context.Process(target=_rank_loop, args=(rank, port, self._jobs[rank], self._results), daemon=True)
            for rank in range(WORLD_SIZE)
        ]
        for process in self._processes:
            process.start()

    def run(self, function: Callable[[int, Any], Any], per_rank: list[Any]) -> list[Any]:
        """`function(rank, per_rank[rank])` on both ranks; their return values, by rank."""
        for rank, queue in enumerate(self._jobs):
            queue.put((function, per_rank[rank]))
        answers: dict[int, Any] = {}
        for _ in range(WORLD_SIZE):
            rank, ok, value = self._results.get(timeout=JOB_TIMEOUT_S)
            assert ok, f"rank {rank} failed:\n{value}"
            answers[rank] = value
        return [answers[rank] for rank in range(WORLD_SIZE)]

    def close(self) -> None:
        for queue in self._jobs:
            queue.put(None)
        for process in self._processes:
            process.join(timeout=60)
            if process.is_alive():
                process.kill()
