"""One PNG per varied axis: a metric's mean over seeds against the axis' values, with the
standard deviation over the seeds as error bars (the plot's title says so, and over how many
seeds), one line per combination of the other axes.

A published figure (a ``<metric> [<source>]`` column of the summary) is a black cross at its
condition, labelled with its source.

Plotting needs matplotlib (``pip install lamp_pl[grid]``); without it the tables are still written
and one line says how to get the plots.
"""

from __future__ import annotations

from pathlib import Path

from lamp_pl.errors import LaMPError


class PlottingUnavailable(LaMPError):
    """matplotlib is not installed."""


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise PlottingUnavailable(
            "lamp-pl grid: plots need matplotlib: pip install 'lamp_pl[grid]' (or pass --no_plots)"
        ) from None
    matplotlib.use("Agg")  # files only, never a window
    import matplotlib.pyplot as plt

    return plt


def published_points(rows: list[dict], axis: str, metric: str) -> dict[str, list[tuple[str, float]]]:
    """The published figures of `metric` in the rows (columns ``<metric> [<source>]``), as
    (value of `axis`, figure) pairs by source, for black crosses beside our means."""
    points: dict[str, list[tuple[str, float]]] = {}
    for row in rows:
        for key, value in row.items():
            if key.startswith(f"{metric} [") and key.endswith("]") and isinstance(value, float) and axis in row:
                points.setdefault(key[len(metric) + 2 : -1], []).append((str(row[axis]), value))
    return points


def error_bars(rows: list[dict]) -> str:
    """What the error bars show: the standard deviation over how many seeds (``seeds`` of each
    condition row; a range when the conditions differ, 0 bars for one seed)."""
    counts = sorted({int(row.get("seeds", 1) or 1) for row in rows}) or [1]
    seeds = str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"
    word = "seed" if seeds == "1" else "seeds"
    return f"sample std over {seeds} {word}" + (" (one seed: no spread)" if seeds == "1" else "")


def plot_axes(summary: list[dict], axes: list[str], metric: str, folder: Path) -> list[Path]:
    """Write `plot_<axis>.png` for every axis with more than one value; return the paths.

    Args:
        summary: The condition rows (axis values, ``<metric>_mean``, ``<metric>_std``).
        axes: The grid's axes, in order.
        metric: The metric to plot (e.g. ``accuracy``).
        folder: Where the PNGs go.
    """
    rows = [row for row in summary if isinstance(row.get(f"{metric}_mean"), float)]
    written = []
    for axis in axes:
        values = list(dict.fromkeys(str(row[axis]) for row in rows if axis in row))
        if len(values) < 2:
            continue
        plt = _pyplot()
        figure, ax = plt.subplots(figsize=(max(4.0, 1.0 + 0.9 * len(values)), 3.2))
        series: dict[str, dict[str, tuple[float, float]]] = {}
        for row in rows:
            others = ", ".join(f"{a}={row[a]}" for a in axes if a != axis and a != "seed" and a in row)
            series.setdefault(others, {})[str(row[axis])] = (row[f"{metric}_mean"], row.get(f"{metric}_std", 0.0))
        for name, points in series.items():
            xs = [values.index(v) for v in points]
            ax.errorbar(
                xs,
                [m for m, _ in points.values()],
                yerr=[s for _, s in points.values()],
                capsize=3,
                marker="o",
                label=name or None,
            )
        for source, marks in published_points(rows, axis, metric).items():
            ax.scatter(
                [values.index(v) for v, _ in marks], [m for _, m in marks], marker="x", color="black", label=source
            )
        ax.set_xticks(range(len(values)), values, rotation=20)
        ax.set_xlabel(axis)
        ax.set_ylabel(f"{metric} (mean over seeds)")
        ax.set_title(f"error bars: {error_bars(rows)}", fontsize=8)
        if any(series):
            ax.legend(fontsize=7)
        figure.tight_layout()
        path = folder / f"plot_{axis}.png"
        figure.savefig(path, dpi=100)
        plt.close(figure)
        written.append(path)
    return written


__all__ = ["PlottingUnavailable", "error_bars", "plot_axes", "published_points"]
