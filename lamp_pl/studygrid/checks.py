"""A grid's inputs, checked before anything is built: every axis value a run would refuse (a
retriever, ablation, order or user context that does not exist, a negative or non-numeric k, an
unknown task, a data folder that is not there) and a baseline that names no row of the grid.

Each refusal is one `GridAxisError` naming the axis (its option) and the value, so `lamp-pl grid`
says it in one line before a cache is built or a worker started, instead of the first cache
build failing into its log.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import get_args

from lamp_pl.studygrid.axes import GridAxisError, label
from lamp_pl.tasks.longform import source_of


def axis_choices() -> dict[str, tuple[str, ...]]:
    """The values each choice axis accepts (the pipeline's own `Literal` types)."""
    from lamp_pl.prompts import Ablation, Order, UserContext
    from lamp_pl.retrieval.config import RETRIEVERS

    return {
        "retriever": RETRIEVERS,
        "ablation": get_args(Ablation),
        "order": get_args(Order),
        "user_context": get_args(UserContext),
    }


def check_k(value: str) -> None:
    """k: a whole number of items >= 0, or a fraction of the profile in (0, 1)."""
    try:
        k = float(value)
    except ValueError:
        raise GridAxisError(f"--k {value}: not a number (k is a count of items, or a fraction in (0, 1))") from None
    if math.isnan(k) or k < 0 or (k >= 1 and k != int(k)):
        raise GridAxisError(f"--k {value}: k must be a whole number >= 0 or a fraction in (0, 1)")


def check_task(value: str, axis: str = "task", folders: bool = True) -> None:
    """A task the registry knows, and (with `folders`) a LaMP task's data folder that exists."""
    from lamp_pl.tasks import get_task

    name, _, folder = value.partition("=")
    if axis == "task":
        try:
            get_task(name)
        except ValueError as error:  # ConfigError: unknown, or a bad task spec
            raise GridAxisError(f"--task {value}: {error}") from None
    if folders and folder and (axis == "split" or source_of(name) is None) and not Path(folder).expanduser().is_dir():
        raise GridAxisError(f"--{axis} {value}: {folder}: no such data folder")


def check_axes(axes: dict[str, list[str]], folders: bool = True) -> None:
    """Raise `GridAxisError` for the first axis value no run could use (see the module's doc);
    without `folders` (a dry run: data not downloaded yet) data folders may be missing."""
    choices = axis_choices()
    for axis, values in axes.items():
        for value in values:
            if axis in choices and value not in choices[axis]:
                raise GridAxisError(f"--{axis} {value}: unknown {axis}; expected one of {', '.join(choices[axis])}")
            if axis == "k":
                check_k(value)
            elif axis in ("task", "split"):
                check_task(value, axis, folders)


def check_baseline(baseline: tuple[str, str], grids: list[dict[str, list[str]]]) -> None:
    """The baseline ``AXIS=VALUE`` must be a value of an axis some grid varies (its table's label)."""
    axis, value = baseline
    shown = {label(axis, v) for axes in grids for v in axes.get(axis, [])}
    if not shown:
        varied = sorted({a for axes in grids for a in axes})
        raise GridAxisError(
            f"--baseline {axis}={value}: the grid does not vary {axis} (it varies {', '.join(varied) or 'nothing'})"
        )
    if value not in shown:
        raise GridAxisError(f"--baseline {axis}={value}: not a value of the grid's {axis} ({', '.join(sorted(shown))})")


__all__ = ["axis_choices", "check_axes", "check_baseline", "check_k", "check_task"]
