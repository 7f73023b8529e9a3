"""The grid's axes: what each value of each axis changes in a run's command line.

Study axes (retriever, k, ablation, order, user context) set one data option each. The others
choose a run's setting as a whole: `task` (``NAME`` or ``NAME=DATA_DIR``: the task and its data
folder; for a task read with `datasets`, LongLaMP's and LaMP-QA's, the folder is its
``data.source.dataset`` and the task's config is set too), `split` (``NAME=DATA_DIR``: a split
protocol's folder, e.g. ``user=data/user`` ``time=data/time``), `model` (a config fragment composed after the grid's own configs, e.g.
``model/seq2seq``, a file or a shipped name) and `seed` (``seed_everything``, the training shuffle's and the random retrievers' seeds).
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from pathlib import Path

from lamp_pl.errors import LaMPError
from lamp_pl.retrieval.config import RETRIEVERS
from lamp_pl.tasks.longform import source_of

# The study axes' options, and where a config file sets each (dotted keys of its YAML).
STUDY_AXES = {
    "retriever": "data.retrieval.retriever",
    "k": "data.k",
    "ablation": "data.prompt.ablation",
    "order": "data.prompt.order",
    "user_context": "data.prompt.user_context",
}
# Every axis, in the order a point's name lists them.
AXIS_NAMES = ("task", "split", "model", *STUDY_AXES, "seed")
# Settings a plan reads from the configs besides the study axes (dotted YAML keys).
CONFIG_KEYS = {
    **STUDY_AXES,
    "task": "data.task",
    "data_dir": "data.data_dir",
    "test_split": "data.test_split",
    "train_split": "data.train_split",
    "max_epochs": "trainer.max_epochs",
    "seed": "seed_everything",
    "source": "data.source.dataset",
    "source_name": "data.source.name",
    "source_revision": "data.source.revision",
    "cache_dir": "data.cache_dir",
}


class GridAxisError(LaMPError):
    """An axis value the grid cannot use (bad form, or a model fragment that is not a file)."""


@dataclass(frozen=True)
class Point:
    """One grid point: a value per axis the grid varies (axes it does not vary stay as configured)."""

    values: dict[str, str] = field(default_factory=dict)

    @property
    def name(self) -> str:
        """The point's run folder name, e.g. ``task=LaMP_2-retriever=bm25-seed=1`` (``default`` when empty)."""
        return "-".join(f"{axis}={label(axis, value)}" for axis, value in self.values.items()) or "default"

    def without(self, axis: str) -> dict[str, str]:
        """The point's values with `axis` left out (e.g. the seeds of one condition share this)."""
        return {key: value for key, value in self.values.items() if key != axis}


def _split_value(axis: str, value: str, need_dir: bool) -> tuple[str, str | None]:
    name, sep, folder = value.partition("=")
    if not name or (sep and not folder) or (need_dir and not sep):
        form = "NAME=DATA_DIR" if need_dir else "NAME or NAME=DATA_DIR"
        raise GridAxisError(f"grid axis {axis}: {value!r} is not of the form {form}")
    return name, folder or None


def retriever_fragment(value: str) -> Path | None:
    """The config fragment a retriever axis value names, None for a retriever's own name: a YAML
    path, or a fragment shipped under ``retriever/`` (``bge``, ``e5``, ``gte``,
    ``contriever_rerank``, ``hybrid``...; `lamp-pl configs` lists them)."""
    from lamp_pl.shipped import find_shipped

    if value in RETRIEVERS:
        return None
    if value.endswith((".yaml", ".yml")):
        return Path(value)
    shipped = find_shipped(value, "retriever")
    if shipped is not None:
        return shipped
    raise GridAxisError(
        f"--retriever {value}: neither a retriever ({', '.join(RETRIEVERS)}) "
        "nor a config fragment (a .yaml path or a shipped name under retriever/)"
    )


def label(axis: str, value: str) -> str:
    """How a value appears in names and tables: a model fragment by its file stem, a task or
    split protocol by its name (without the folder)."""
    if axis == "model" or (axis == "retriever" and value.endswith((".yaml", ".yml"))):
        return Path(value).stem
    if axis in ("task", "split"):
        return value.partition("=")[0]
    return value


def check_values(axes: dict[str, list[str]]) -> None:
    """Raise `GridAxisError` naming the first unusable value (unknown axis, bad form, missing fragment)."""
    for axis, values in axes.items():
        if axis not in AXIS_NAMES:
            raise GridAxisError(f"unknown grid axis {axis!r}; expected one of {', '.join(AXIS_NAMES)}")
        for value in values:
            if axis in ("task", "split"):
                _split_value(axis, value, need_dir=axis == "split")
            elif axis == "model" and not Path(value).is_file():
                raise GridAxisError(f"grid axis model: {value}: no such config fragment")
            elif axis == "retriever" and not _usable_retriever(value):
                raise GridAxisError(f"grid axis retriever: {value}: no such config fragment")
            elif axis == "seed" and not value.lstrip("-").isdigit():
                raise GridAxisError(f"grid axis seed: {value!r} is not an integer")


def _usable_retriever(value: str) -> bool:
    """A retriever's own name, or a config fragment that exists."""
    fragment = retriever_fragment(value)
    return fragment is None or fragment.is_file()


def combinations(axes: dict[str, list[str]]) -> list[Point]:
    """Every combination of the axes' values (axes in `AXIS_NAMES` order, values as given)."""
    check_values(axes)
    ordered = {axis: axes[axis] for axis in AXIS_NAMES if axes.get(axis)}
    return [Point(dict(zip(ordered, values))) for values in itertools.product(*ordered.values())]


def config_args(values: dict[str, str]) -> list[str]:
    """The `--config` arguments a point adds after the grid's configs (its model fragment, and its
    retriever's when the retriever value names a fragment such as ``bge``)."""
    out = ["--config", values["model"]] if "model" in values else []
    fragment = retriever_fragment(values["retriever"]) if "retriever" in values else None
    return [*out, "--config", str(fragment)] if fragment else out


def override_args(values: dict[str, str]) -> list[str]:
    """The command-line overrides that give a run the point's values (after every config)."""
    out: list[str] = []
    if "split" in values or "task" in values:
        task, folder = task_data(values)
        out += ["--data.task", task] if task else []
        spec = source_of(task) if task else None
        if spec is not None:  # read with `datasets`: the folder is a local copy, the config the task's
            out += ["--data.source.dataset", folder] if folder else []
            out += ["--data.source.name", spec.name]
        else:
            out += ["--data.source", "null"] if task else []  # a LaMP task reads LaMP files, never a dataset
            out += ["--data.data_dir", folder] if folder else []
    for axis, option in STUDY_AXES.items():
        if axis in values and not (axis == "retriever" and retriever_fragment(values[axis])):
            out += [f"--{option}", values[axis]]
    if "seed" in values:
        seed = values["seed"]
        out += ["--seed_everything", seed, "--data.seed", seed, "--data.retrieval.seed", seed]
    return out


def task_data(values: dict[str, str]) -> tuple[str | None, str | None]:
    """The task a point sets (None: the configured one) and its data folder: the split
    protocol's folder (it holds every task's data), else the task value's own."""
    task, task_dir = _split_value("task", values["task"], False) if "task" in values else (None, None)
    split_dir = _split_value("split", values["split"], True)[1] if "split" in values else None
    return task, split_dir or task_dir


def data_settings(values: dict[str, str]) -> dict[str, str]:
    """The data settings (`CONFIG_KEYS` names) a point's task and split values give a run:
    ``data_dir`` for a LaMP task, ``source`` (the folder) and ``source_name`` (the task's config)
    for a task read with `datasets`."""
    task, folder = task_data(values)
    spec = source_of(task) if task else None
    if spec is None:
        return {"data_dir": folder} if folder else {}
    return {"source_name": spec.name, **({"source": folder} if folder else {})}


def extra_settings(extra: list[str]) -> dict[str, str]:
    """The `CONFIG_KEYS` settings that pass-through options (``--data.k 2`` or ``--data.k=2``) set."""
    options = {f"--{dotted}": key for key, dotted in CONFIG_KEYS.items()}
    found: dict[str, str] = {}
    for at, arg in enumerate(extra):
        option, sep, value = arg.partition("=")
        if option in options and (sep or at + 1 < len(extra)):
            found[options[option]] = value if sep else extra[at + 1]
    return found


__all__ = [
    "AXIS_NAMES",
    "CONFIG_KEYS",
    "STUDY_AXES",
    "GridAxisError",
    "Point",
    "check_values",
    "combinations",
    "config_args",
    "data_settings",
    "extra_settings",
    "label",
    "override_args",
    "retriever_fragment",
    "task_data",
]
