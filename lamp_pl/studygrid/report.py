"""The grid's tables: one row per point (`results.*`), and one per condition over its seeds
(`summary.*`: mean, std, the bootstrap interval against a baseline, published figures beside
ours). Rewritten as each point finishes, so a killed grid still leaves a usable table.
"""

from __future__ import annotations

import csv
from pathlib import Path

from lamp_pl.studygrid.axes import label
from lamp_pl.studygrid.plan import GridPlan, run_data
from lamp_pl.studygrid.stats import (
    baseline_of,
    condition,
    mean_std,
    paired_bootstrap,
    question_scores,
    seed_mean,
    split_golds,
)

STATUS_COLUMNS = ("status", "error", "same_as")


def labels(values: dict[str, str]) -> dict[str, str]:
    """A point's values as its table shows them (model fragments by stem, folders left out)."""
    return {axis: label(axis, value) for axis, value in values.items()}


def point_rows(plan: GridPlan, states: dict[str, dict]) -> list[dict]:
    """One row per point: its values, then its metrics (``done``), or its status and error."""
    rows = []
    for run in plan.runs:
        source = run.same_as or run.point.name
        state = states.get(source, {"status": "pending"})
        row: dict = labels(run.point.values)
        if state.get("status") == "done":
            row.update(state.get("metrics", {}))
        else:
            row.update(status=state.get("status", "pending"), error=state.get("error", ""))
        if run.same_as:
            row["same_as"] = run.same_as
        rows.append(row)
    return rows


def metric_names(rows: list[dict], axes: set[str]) -> list[str]:
    """The numeric columns of `rows` (metrics), in first-seen order."""
    names = dict.fromkeys(
        key for row in rows for key, v in row.items() if key not in axes and isinstance(v, int | float)
    )
    return list(names)


def _scores(plan: GridPlan, states: dict[str, dict], cond: tuple, cache: dict) -> dict[str, float] | None:
    if cond in cache:
        return cache[cond]
    per_seed = []
    for run in plan.runs:
        if condition(labels(run.point.values)) != cond:
            continue
        state = states.get(run.same_as or run.point.name, {})
        if state.get("status") != "done" or not Path(state.get("predictions", "")).is_file():
            continue
        data_dir, task = run_data(run.settings, build=True)
        golds = split_golds(data_dir, task, run.settings.get("test_split", "dev"))
        per_seed.append(question_scores(task, state["predictions"], golds))
    cache[cond] = seed_mean(per_seed) if per_seed else None
    return cache[cond]


def members_split(plan: GridPlan, cond: tuple) -> str | None:
    """The split a condition's runs were scored on (`test_split`, dev when not set)."""
    for run in plan.runs:
        if condition(labels(run.point.values)) == cond:
            return str(run.settings.get("test_split", "dev"))
    return None


def summary_rows(
    plan: GridPlan,
    states: dict[str, dict],
    baseline: tuple[str, str] | None = None,
    published: list[dict] | None = None,
    resamples: int = 1000,
) -> list[dict]:
    """One row per condition: mean/std over seeds, the interval against `baseline`, published values."""
    rows = point_rows(plan, states)
    axes = {axis for run in plan.runs for axis in run.point.values}
    metrics = metric_names(rows, axes)
    groups: dict[tuple, list[dict]] = {}
    for point in rows:
        groups.setdefault(condition({a: point[a] for a in point if a in axes}), []).append(point)
    cache: dict = {}
    out = []
    for cond, members in groups.items():
        row: dict = dict(cond)
        row.update(mean_std(members, metrics))
        failed = [m for m in members if m.get("status") in ("failed", "running", "pending")]
        if failed:
            row["not_done"] = len(failed)
        if baseline and resamples and dict(cond).get(baseline[0]) not in (None, baseline[1]):
            base, ours = _scores(plan, states, baseline_of(cond, *baseline), cache), _scores(plan, states, cond, cache)
            if base and ours:
                interval = paired_bootstrap(base, ours, resamples)
                row.update({f"vs_{baseline[0]}={baseline[1]}": interval["diff"], "ci_low": interval["ci_low"]})
                row["ci_high"] = interval["ci_high"]
        split = members_split(plan, cond)
        row.update(published_columns(dict(cond), row, published or [], split))
        out.append(row)
    return out


def matching_entry(values: dict[str, str], published: list[dict]) -> dict | None:
    """The first published entry (``{"values": {axis: value}, "metrics": {...}}``) whose values
    all match `values` (a condition or a point, as the tables show them)."""
    for entry in published:
        if all(values.get(axis) == str(value) for axis, value in entry["values"].items()):
            return entry
    return None


def published_columns(cond: dict[str, str], row: dict, published: list[dict], split: str | None = None) -> dict:
    """The matching entry beside our ``<metric>_mean``, in columns that name its source:
    ``<metric> [<source>]`` (its figure), ``diff_<metric>`` (ours minus it), ``system [<source>]``
    (what it measured) and ``ours_on`` (the split our number is on)."""
    entry = matching_entry(cond, published)
    if entry is None:
        return {}
    source = entry.get("source", "published")
    out: dict = {f"system [{source}]": str(entry["system"])} if entry.get("system") else {}
    for metric, value in entry["metrics"].items():
        out[f"{metric} [{source}]"] = float(value)
        ours = row.get(f"{metric}_mean")
        if isinstance(ours, float):
            out[f"diff_{metric}"] = ours - float(value)
    if split:
        out["ours_on"] = split
    return out


def published_notes(published: list[dict]) -> list[str]:
    """What the published columns mean, one line per source, for below the summary table."""
    return [
        f"- `<metric> [{source}]`: the figure of {source} for the system in `system [{source}]`; "
        f"`diff_<metric>` is ours minus it. Ours is on the split in `ours_on`, the split this grid ran "
        "(dev unless test golds are given), so a difference also holds the change of split."
        for source in dict.fromkeys(entry.get("source", "published") for entry in published)
    ]


def write_table(rows: list[dict], stem: Path, notes: list[str] | None = None) -> tuple[Path, Path]:
    """Write `<stem>.csv` and `<stem>.md` (numbers to 4 places; `notes` below the Markdown table)."""
    columns = list(dict.fromkeys(key for row in rows for key in row))
    csv_path, md_path = stem.with_suffix(".csv"), stem.with_suffix(".md")
    with csv_path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=columns)
        writer.writeheader()
        writer.writerows(rows)
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = [f"{row.get(c):.4f}" if isinstance(row.get(c), float) else str(row.get(c, "")) for c in columns]
        lines.append("| " + " | ".join(cells) + " |")
    md_path.write_text("\n".join(lines + ([""] + notes if notes else [])) + "\n")
    return csv_path, md_path


def failed_notes(plan: GridPlan, states: dict[str, dict]) -> list[str]:
    """One line per point that failed, with its error's line."""
    return [
        f"- failed: {run.point.name}: {states[run.point.name].get('error', '')}"
        for run in plan.distinct
        if states.get(run.point.name, {}).get("status") == "failed"
    ]


__all__ = [
    "failed_notes",
    "labels",
    "matching_entry",
    "metric_names",
    "point_rows",
    "published_columns",
    "published_notes",
    "summary_rows",
    "write_table",
]
