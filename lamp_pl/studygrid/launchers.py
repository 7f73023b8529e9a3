"""Launchers: where a grid's points run. `local` runs them concurrently in worker processes on
this machine, `slurm` submits them as one job array through submitit.

Local workers (one long-lived process per slot) die with the grid's process, however it ends
(see `lamp_pl.studygrid.owner`), and each gets a slot: ``devices_per_point`` GPUs of the visible ones (the worker sees
only its own through ``CUDA_VISIBLE_DEVICES``), or, on a machine without GPUs, that many CPU
threads (``OMP_NUM_THREADS`` and torch's intra-op threads).
"""

from __future__ import annotations

import atexit
import contextlib
import importlib
import multiprocessing
import os
import queue
import sys
import threading
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

from lamp_pl.extras import require
from lamp_pl.studygrid.owner import die_with_parent
from lamp_pl.studygrid.worker import PointJob, run_point

OnDone = Callable[[PointJob, dict], None]

WARM_MODULES = ("lamp_pl.lightning.module", "lamp_pl.lightning.datamodule")
"""What every point imports (torch, Lightning, transformers under them): a local worker imports
them while the grid's caches are built, so the import does not wait for the caches."""


@dataclass(frozen=True)
class Slot:
    """What one local worker may use."""

    gpus: tuple[str, ...] = ()
    threads: int = 1

    def environment(self) -> dict[str, str]:
        """The worker's environment: its GPUs only, or none and its thread count."""
        env = dict(os.environ, CUDA_VISIBLE_DEVICES=",".join(self.gpus))
        if not self.gpus:
            env.update(OMP_NUM_THREADS=str(self.threads), MKL_NUM_THREADS=str(self.threads))
        return env


def visible_gpus() -> list[str]:
    """The GPUs this process may use (``CUDA_VISIBLE_DEVICES`` when set, else every one found)."""
    given = os.environ.get("CUDA_VISIBLE_DEVICES")
    if given is not None:
        return [gpu for gpu in given.split(",") if gpu.strip()]
    gpu_driver = ("/proc/driver/nvidia", "/dev/nvidiactl", "/dev/kfd")  # NVIDIA's and ROCm's
    if sys.platform.startswith("linux") and not any(Path(path).exists() for path in gpu_driver):
        return []  # no GPU driver: no need to import torch (seconds) in the grid's parent to count none
    try:
        import torch

        return [str(index) for index in range(torch.cuda.device_count())]
    except Exception:  # no usable CUDA runtime: a CPU machine
        return []


def local_slots(devices_per_point: int, workers: int | None = None, gpus: list[str] | None = None) -> list[Slot]:
    """One slot per concurrent worker: disjoint groups of `devices_per_point` GPUs over the
    visible ones, or (no GPUs) `workers` slots of `devices_per_point` threads (default: as many
    as the CPU cores hold)."""
    if devices_per_point < 1:
        raise ValueError(f"--devices_per_point must be >= 1 (got {devices_per_point})")
    gpus = visible_gpus() if gpus is None else gpus
    if gpus:
        if len(gpus) < devices_per_point:
            raise ValueError(f"--devices_per_point {devices_per_point}: only {len(gpus)} GPU(s) visible")
        groups = [tuple(gpus[at : at + devices_per_point]) for at in range(0, len(gpus), devices_per_point)]
        slots = [Slot(group) for group in groups if len(group) == devices_per_point]
        return slots[:workers] if workers else slots
    count = workers or max(1, (os.cpu_count() or 1) // devices_per_point)
    return [Slot(threads=devices_per_point) for _ in range(count)]


def slot_job(job: PointJob, slot: Slot) -> PointJob:
    """`job` as it runs in `slot`: its thread count, and as many Lightning devices as GPUs."""
    if slot.gpus:
        return replace(job, args=[*job.args, "--trainer.devices", str(len(slot.gpus))], threads=0)
    return replace(job, threads=slot.threads)


def _enter_slot(environment: dict[str, str], grid: int) -> None:
    """A worker process's start: dies with the `grid` process, then its slot's GPUs and threads
    (before anything touches CUDA)."""
    die_with_parent(grid)
    os.environ.update(environment)
    # atexit runs last-in, first-out: registered first, this runs after every handler torch,
    # Lightning and the rest register, and skips only the interpreter's module-by-module teardown,
    # which takes seconds with torch loaded and which nothing after the last point needs.
    atexit.register(_end_without_teardown)


def _end_without_teardown() -> None:
    """End a worker process once its exit handlers have run, without the interpreter teardown."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def warm_up(modules: tuple[str, ...]) -> None:
    """Import `modules` in this (worker) process."""
    for module in modules:
        importlib.import_module(module)


def _pool(slot: Slot) -> ProcessPoolExecutor:
    """One long-lived worker process for `slot` (spawned: a clean interpreter, no forked CUDA or
    thread state); it runs point after point, so each pays the imports once."""
    keys = ("CUDA_VISIBLE_DEVICES", "OMP_NUM_THREADS", "MKL_NUM_THREADS")
    environment = {key: value for key, value in slot.environment().items() if key in keys}
    context = multiprocessing.get_context("spawn")
    return ProcessPoolExecutor(1, mp_context=context, initializer=_enter_slot, initargs=(environment, os.getpid()))


def run_local(
    jobs: list[PointJob],
    slots: list[Slot],
    on_done: OnDone,
    prepare: Callable[[], None] | None = None,
    warm: tuple[str, ...] = WARM_MODULES,
) -> None:
    """Run `jobs` on one worker process per slot, each taking the next job as it finishes one;
    `on_done` is called (one at a time) as each job ends. A worker that dies is replaced, and its
    point is recorded as failed.

    `prepare` (building the caches) runs here before any job starts, while the workers start and
    import `warm` (what the points need); if it raises, no job runs and its error is raised.
    """
    from lamp_pl.studygrid.state import mark_failed, read_state

    todo: queue.Queue[PointJob] = queue.Queue()
    for job in jobs:
        todo.put(job)
    lock = threading.Lock()
    prepared, cancelled = threading.Event(), threading.Event()

    def serve(slot: Slot) -> None:
        pool = _pool(slot)
        warming = pool.submit(warm_up, warm)
        try:
            prepared.wait()
            if cancelled.is_set():
                return
            with contextlib.suppress(Exception):  # a point that needs the failed import says why itself
                warming.result()
            while True:
                try:
                    job = todo.get_nowait()
                except queue.Empty:
                    return
                try:
                    state = pool.submit(run_point, slot_job(job, slot)).result()
                except BrokenProcessPool:  # killed (e.g. out of memory): record it, start a new worker
                    state = asdict(mark_failed(job.run_dir, read_state(job.run_dir), "the worker process died"))
                    pool.shutdown(wait=False)
                    pool = _pool(slot)
                with lock:
                    on_done(job, state)
        finally:
            pool.shutdown()

    threads = [threading.Thread(target=serve, args=(slot,), daemon=True) for slot in slots[: len(jobs)]]
    for thread in threads:
        thread.start()
    try:
        if prepare is not None:
            prepare()
    except BaseException:
        cancelled.set()
        raise
    finally:
        prepared.set()
        for thread in threads:
            thread.join()


@dataclass
class SlurmOptions:
    """What each array task asks Slurm for (``--sbatch key=value`` adds any other option)."""

    partition: str | None = None
    time_min: int = 60
    gpus_per_point: int = 1
    cpus_per_point: int | None = None
    mem_gb: int | None = None
    array_parallelism: int = 64
    sbatch: dict[str, str] = field(default_factory=dict)
    cluster: str | None = None
    """submitit's cluster: None detects Slurm; ``local`` runs the array here (for tests)."""

    def executor_parameters(self) -> dict:
        """submitit `AutoExecutor.update_parameters` keywords."""
        params: dict = {"timeout_min": self.time_min, "gpus_per_node": self.gpus_per_point, "name": "lamp-pl-grid"}
        params.update(slurm_array_parallelism=self.array_parallelism, slurm_additional_parameters=dict(self.sbatch))
        if self.partition:
            params["slurm_partition"] = self.partition
        if self.cpus_per_point:
            params["cpus_per_task"] = self.cpus_per_point
        if self.mem_gb:
            params["mem_gb"] = self.mem_gb
        return params


def sbatch_script(folder: Path, options: SlurmOptions, count: int) -> str:
    """The sbatch script submitit submits for an array of `count` points (written beside the
    grid as `slurm/array.sbatch`, also where there is no Slurm, to check it before submitting)."""
    from submitit.slurm.slurm import _make_sbatch_string

    return _make_sbatch_string(
        command=f"{sys.executable} -u -m submitit.core._submit {folder}",
        folder=folder,
        job_name="lamp-pl-grid",
        partition=options.partition,
        time=options.time_min,
        gpus_per_node=options.gpus_per_point,
        cpus_per_task=options.cpus_per_point,
        mem=f"{options.mem_gb}GB" if options.mem_gb else None,
        array_parallelism=options.array_parallelism,
        map_count=count,
        additional_parameters=dict(options.sbatch) or None,
    )


def run_slurm(jobs: list[PointJob], folder: Path, options: SlurmOptions, on_done: OnDone, poll_s: float = 1.0) -> None:
    """Submit `jobs` as a submitit job array and wait, calling `on_done` as each one ends."""
    submitit = require("submitit", "lamp-pl grid --launcher slurm")

    folder.mkdir(parents=True, exist_ok=True)
    (folder / "array.sbatch").write_text(sbatch_script(folder / "%j", options, len(jobs)))
    executor = submitit.AutoExecutor(folder=folder / "%j", cluster=options.cluster)
    executor.update_parameters(**options.executor_parameters())
    submitted = executor.map_array(run_point, jobs)
    pending = dict(zip(submitted, jobs))
    while pending:
        for sub in [sub for sub in pending if sub.done()]:
            job = pending.pop(sub)
            try:
                state = sub.result()
            except Exception as error:  # the job itself died (time limit, node failure)
                from lamp_pl.studygrid.state import mark_failed, read_state

                state = asdict(mark_failed(job.run_dir, read_state(job.run_dir), error))
            on_done(job, state)
        if pending:
            time.sleep(poll_s)


__all__ = ["SlurmOptions", "Slot", "local_slots", "run_local", "run_slurm", "sbatch_script", "visible_gpus"]
