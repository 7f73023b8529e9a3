"""`lamp-pl grid --dry_run`: the plan in words, before anything runs.

The points (with the published figure each will be compared with, and its source), which of
them are reported from an equal earlier point, the distinct data caches
the grid builds first, and the device hours the runs take at a given samples-per-second rate
(or the rate its done points measured).
"""

from __future__ import annotations

from lamp_pl.studygrid.plan import GridPlan, run_samples
from lamp_pl.studygrid.report import labels, matching_entry
from lamp_pl.studygrid.state import read_state


def measured_rate(plan: GridPlan) -> float | None:
    """Samples per second (per point) over the plan's done points, from their state files."""
    done = [read_state(run.run_dir) for run in plan.distinct]
    samples = sum(s.samples for s in done if s.done and s.seconds > 0)
    seconds = sum(s.seconds for s in done if s.done and s.seconds > 0 and s.samples)
    return samples / seconds if seconds else None


def compared_with(values: dict[str, str], split: str, published: list[dict]) -> str:
    """The published figure a point will be compared with, and its source, as the dry run says it."""
    entry = matching_entry(values, published)
    if entry is None:
        return ""
    figures = ", ".join(f"{metric} {float(value):.3f}" for metric, value in entry["metrics"].items())
    system = f"{entry['system']}: " if entry.get("system") else ""
    return f"; compared with {system}{figures} ({entry.get('source', 'published')}; ours on {split})"


def describe_plan(
    plan: GridPlan,
    devices_per_point: int = 1,
    samples_per_second: float | None = None,
    published: list[dict] | None = None,
    name: str = "",
) -> str:
    """The dry run's report: the grid's name (a recipe's grids), points (each with the published
    figure it will be compared with), deduplicated runs, caches and the device-hour estimate. A
    run whose sample count cannot be known yet (its data are not downloaded) is counted as
    unknown, never as 0, and left out of the estimate, which says so."""
    lines = [f"grid {name} ({plan.out}):"] if name else []
    lines.append(f"{len(plan.runs)} points:")
    for run in plan.runs:
        state = read_state(run.run_dir)
        note = f"same as {run.same_as} (not run again)" if run.same_as else state.status
        split = str(run.settings.get("test_split", "dev"))
        lines.append(f"  {run.point.name}: {note}{compared_with(labels(run.point.values), split, published or [])}")
    duplicates = len(plan.runs) - len(plan.distinct)
    lines.append(f"{len(plan.distinct)} distinct runs ({duplicates} deduplicated)")
    caches = plan.caches()
    lines.append(f"{len(caches)} data caches built first (lamp-pl index ...):")
    lines += [f"  lamp-pl index {' '.join(args)}" for args in caches]
    todo = [run for run in plan.distinct if not read_state(run.run_dir).done]
    counts = [run_samples(run.settings, plan.fit) for run in todo]
    known = [c for c in counts if c is not None]
    lines += sample_lines(len(todo), known, devices_per_point, samples_per_second, measured_rate(plan))
    return "\n".join(lines)


def sample_lines(
    todo: int, known: list[int], devices_per_point: int, given: float | None, measured: float | None
) -> list[str]:
    """The samples of the `todo` runs (`known`: the counts that could be read) and the estimate."""
    unknown = todo - len(known)
    why = "data not there yet" if unknown == 1 else "their data are not there yet"
    if not unknown:
        lines = [f"{todo} runs to do, {sum(known)} samples"]
    elif not known:
        lines = [f"{todo} runs to do, samples unknown ({why})"]
    else:
        lines = [f"{todo} runs to do, {sum(known)} samples in {len(known)} of them, {unknown} unknown ({why})"]
    rate, source = (given, "given") if given else (measured, "measured on the done points")
    if not todo:
        return [*lines, "estimate: nothing left to run"]
    if not known:
        return [*lines, "estimate: unknown (no run's sample count is known yet)"]
    if not rate:
        return [*lines, "estimate: pass --samples_per_second (no done point has measured it yet)"]
    hours = sum(known) / rate * devices_per_point / 3600
    part = f" for the {len(known)} runs whose samples are known ({unknown} unknown not counted)" if unknown else ""
    lines.append(
        f"estimate: {hours:.3f} device hours{part} at {rate:.2f} samples/s per point ({source}), "
        f"{devices_per_point} device(s) per point"
    )
    return lines


__all__ = ["compared_with", "describe_plan", "measured_rate", "sample_lines"]
