"""Run a planned grid: build every distinct data cache once, launch the points that are not
done, and rewrite the tables (and plots) as each point finishes.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

from lamp_pl.errors import LaMPError
from lamp_pl.studygrid.launchers import SlurmOptions, local_slots, run_local, run_slurm
from lamp_pl.studygrid.owner import PointBusyError, busy_message, owner_alive
from lamp_pl.studygrid.plan import GridPlan, run_samples
from lamp_pl.studygrid.report import (
    failed_notes,
    matching_entry,
    metric_names,
    point_rows,
    published_notes,
    summary_rows,
    write_table,
)
from lamp_pl.studygrid.state import read_state
from lamp_pl.studygrid.worker import PointJob


class CacheBuildError(LaMPError):
    """`lamp-pl index` refused one of the grid's caches: its reason, and the log it is in."""


@dataclass
class GridOptions:
    """How a planned grid runs and reports."""

    launcher: str = "local"
    """``local`` (worker processes here) or ``slurm`` (a submitit job array)."""
    devices_per_point: int = 1
    workers: int | None = None
    slurm: SlurmOptions = field(default_factory=SlurmOptions)
    baseline: tuple[str, str] | None = None
    published: list[dict] = field(default_factory=list)
    plots: bool = True
    resamples: int = 1000
    entry: str = ""
    """`module:function` that runs one lamp-pl command (see `PointJob.entry`)."""


def build_caches(plan: GridPlan, entry: str) -> list[list[str]]:
    """Build each distinct data cache of the plan (sequentially, in this process) before any
    point starts: the workers then only open them."""
    import contextlib

    from lamp_pl.studygrid.worker import load_entry

    main = load_entry(entry)
    caches = plan.caches()
    plan.out.mkdir(parents=True, exist_ok=True)
    log_path = plan.out / "caches.log"
    for args in caches:
        with log_path.open("a") as log, contextlib.redirect_stdout(log), contextlib.redirect_stderr(log):
            code: object
            try:
                code = main(["index", *args])
            except SystemExit as exit_:  # the command's own one-line refusal, written to the log
                code = exit_.code
        if code not in (0, None):
            lines = [line for line in log_path.read_text(errors="replace").splitlines() if " error: " in line]
            reason = lines[-1].split(" error: ", 1)[1] if lines else f"exit status {code}"
            raise CacheBuildError(f"building a cache failed: {reason} (see {log_path})")
    return caches


def states_of(plan: GridPlan) -> dict[str, dict]:
    """The recorded state of every distinct point."""
    from dataclasses import asdict

    return {run.point.name: asdict(read_state(run.run_dir)) for run in plan.distinct}


def write_report(plan: GridPlan, options: GridOptions, final: bool = False) -> list[Path]:
    """Rewrite `results.*` and `summary.*` (and, at the end, the plots) from the run folders."""
    states = states_of(plan)
    notes = failed_notes(plan, states)
    written = list(write_table(point_rows(plan, states), plan.out / "results", notes))
    summary = summary_rows(plan, states, options.baseline, options.published, options.resamples if final else 0)
    shown = [e for e in options.published if any(matching_entry(row, [e]) for row in summary)]
    written += write_table(summary, plan.out / "summary", notes + published_notes(shown))
    if final and options.plots:
        from lamp_pl.studygrid.plot import PlottingUnavailable, plot_axes

        axes = list(dict.fromkeys(a for run in plan.runs for a in run.point.values))
        metrics = metric_names(summary, set(axes))
        try:
            if metrics:
                written += plot_axes(summary, axes, metrics[0].removesuffix("_mean"), plan.out)
        except PlottingUnavailable as missing:  # the tables are the results; plots are an extra
            print(f"{missing} (the tables are written)", file=sys.stderr)
    return written


def check_not_busy(plan: GridPlan) -> None:
    """Refuse (`PointBusyError`) a plan with a point another live grid is running; a ``running``
    point whose owner is gone was interrupted, and is resumed."""
    for run in plan.distinct:
        state = read_state(run.run_dir)
        if owner_alive(state):
            raise PointBusyError(busy_message(str(run.run_dir), state))


def jobs_of(plan: GridPlan, entry: str) -> list[PointJob]:
    """The points left to run (not done), as worker jobs."""
    return [
        PointJob(
            run.point.name,
            str(run.run_dir),
            plan.lightning_args(run),
            plan.fit,
            0,
            run_samples(run.settings, plan.fit) or 0,
            plan.predict,
            entry,
        )
        for run in plan.distinct
        if not read_state(run.run_dir).done
    ]


def run_grid(plan: GridPlan, options: GridOptions) -> dict[str, dict]:
    """Run every point of `plan` that is not done and write the report; return the states.

    A point another live grid runs is refused first (`PointBusyError`); caches are built next;
    done points are skipped; killed points (owner gone) resume from their `last.ckpt`; failed
    ones are retried. A point's failure is recorded, never raised.
    """
    check_not_busy(plan)
    plan.out.mkdir(parents=True, exist_ok=True)
    jobs = jobs_of(plan, options.entry)
    skipped = len(plan.distinct) - len(jobs)
    print(f"lamp-pl grid: {len(plan.runs)} points, {len(plan.distinct)} runs, {skipped} done, {len(jobs)} to run")

    def prepare() -> None:
        if jobs:
            build_caches(plan, options.entry)
        write_report(plan, options)

    def on_done(job: PointJob, state: dict) -> None:
        line = f"{state['status']}" + (f": {state['error']}" if state.get("error") else "")
        print(f"lamp-pl grid: {job.name}: {line}", file=sys.stderr if state["status"] != "done" else sys.stdout)
        write_report(plan, options)

    if options.launcher == "slurm":
        prepare()
        run_slurm(jobs, plan.out / "slurm", options.slurm, on_done)
    elif options.launcher == "local":  # the workers start while the caches are built
        run_local(jobs, local_slots(options.devices_per_point, options.workers), on_done, prepare)
    else:
        raise ValueError(f"lamp-pl grid: unknown launcher {options.launcher!r}; expected local or slurm")
    write_report(plan, options, final=True)
    return states_of(plan)


__all__ = [
    "CacheBuildError",
    "GridOptions",
    "build_caches",
    "check_not_busy",
    "jobs_of",
    "run_grid",
    "states_of",
    "write_report",
]
