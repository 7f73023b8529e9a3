"""A grid's plan: its points, the runs left after deduplication, and the data caches they need.

Two points whose prompts and settings are equal (see `lamp_pl.studies.effective_settings`) run
once. Every distinct data cache (index, retrieval results, prompts) is named by the `lamp-pl
index` arguments that build it, so the launcher builds each once before any point starts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from pathlib import Path

from lamp_pl.studygrid.axes import AXIS_NAMES, Point, config_args, data_settings, override_args
from lamp_pl.tasks.longform import source_of

DEFAULT_CACHE = "indexes"
"""The data cache folder when no config sets ``data.cache_dir`` (the pipeline's default)."""


@dataclass(frozen=True)
class PlannedRun:
    """One point of the plan and how it runs."""

    point: Point
    run_dir: Path
    overrides: dict[str, str]
    """The axis values passed on its command line (what it sets, plus values the no-op rules changed)."""
    same_as: str | None = None
    """The earlier point with the same effective settings, whose results this one reports."""
    settings: dict[str, str] = field(default_factory=dict)
    """Everything known of the run's settings: the configs', the extra options', the point's."""


@dataclass
class GridPlan:
    """Every point of a grid, with the arguments common to its runs."""

    configs: list[str]
    extra: list[str]
    out: Path
    fit: bool
    runs: list[PlannedRun]
    predict: bool = False
    """Also write predictions on the predict split (a leaderboard submission's test questions)."""

    @property
    def distinct(self) -> list[PlannedRun]:
        """The runs that are actually trained and tested (not reported from an equal point)."""
        return [run for run in self.runs if run.same_as is None]

    def lightning_args(self, run: PlannedRun) -> list[str]:
        """The `fit`/`test` arguments of `run`: configs, its model fragment, the extra options,
        its overrides (they win), its run folder."""
        base = [arg for config in self.configs for arg in ("--config", config)]
        return once(
            [
                *base,
                *config_args(run.overrides),
                *self.extra,
                *override_args(run.overrides),
                "--trainer.default_root_dir",
                str(run.run_dir),
            ]
        )

    def cache_args(self, run: PlannedRun) -> list[str]:
        """The `lamp-pl index` arguments that build `run`'s data caches (data options only)."""
        options = _options(self.lightning_args(run)[:-2])
        return [
            arg for option in options if option[0] == "--config" or option[0].startswith("--data.") for arg in option
        ]

    def caches(self) -> list[list[str]]:
        """The distinct `index` argument lists of the plan's runs, in first-use order."""
        seen: dict[tuple[str, ...], list[str]] = {}
        for run in self.distinct:
            args = self.cache_args(run)
            seen.setdefault(tuple(args), args)
        return list(seen.values())


def _options(args: list[str]) -> list[list[str]]:
    """`args` cut into options: ``[--name, value]``, ``[--name=value]`` or a bare ``[--flag]``."""
    out, at = [], 0
    while at < len(args):
        takes_value = "=" not in args[at] and at + 1 < len(args) and not args[at + 1].startswith("--")
        out.append(args[at : at + 2] if takes_value else [args[at]])
        at += 2 if takes_value else 1
    return out


def once(args: list[str]) -> list[str]:
    """`args` with each option given once: an option set again later (the configs' options, then
    the extra ones, then the point's own) keeps only its last value, which is the one that wins
    anyway; ``--config`` and appending options (``--x+``) are kept as they are."""
    options = _options(args)
    names = [option[0].partition("=")[0] for option in options]
    last = {name: at for at, name in enumerate(names)}
    keep = [
        option
        for at, (name, option) in enumerate(zip(names, options))
        if name in ("--config", "-c") or name.endswith("+") or last[name] == at
    ]
    return [arg for option in keep for arg in option]


def plan_grid(
    points: list[Point], configured: dict[str, str], configs: list[str], extra: list[str], out: Path, fit: bool
) -> GridPlan:
    """Plan `points`: each in `out/<name>`, equal points marked `same_as` their first.

    Args:
        points: The grid's points.
        configured: Settings the configs and extra options give (see `axes.CONFIG_KEYS`).
        configs: The grid's `--config` files.
        extra: Options passed on to every run (e.g. ``--trainer.max_epochs 1``).
        out: The grid's folder.
        fit: Train each point before testing it (else test only: zero-shot).
    """
    from lamp_pl.studies import effective_settings

    seen: dict[tuple, str] = {}
    runs = []
    for point in points:
        settings = effective_settings(point.values, configured)
        overrides = {
            name: value
            for name, value in settings.items()
            if name in AXIS_NAMES and (name in point.values or configured.get(name) != value)
        }
        key = tuple(sorted((k, v) for k, v in settings.items() if k in AXIS_NAMES))
        first = seen.setdefault(key, point.name)
        same_as = None if first == point.name else first
        known = {**settings, **point.values, **data_settings(point.values)}
        runs.append(PlannedRun(point, out / point.name, overrides, same_as, known))
    return GridPlan(list(configs), list(extra), out, fit, runs)


@cache
def question_count(data_dir: str, task: str, split: str) -> int | None:
    """Questions in a split's file, or None when the file is not there (yet)."""
    from lamp_pl.data.lamp import read_json, split_files

    try:
        questions, _ = split_files(data_dir, task, split)
    except (OSError, LookupError, ValueError):
        return None
    records = read_json(questions)
    return len(records) if isinstance(records, list) else 1


def run_data(settings: dict[str, str], build: bool = False) -> tuple[str, str]:
    """The (LaMP data folder, task name) of a run's settings (an axis value's folder, else the config's).

    A task read with `datasets` (LongLaMP, LaMP-QA) has its LaMP files in the folder its source
    is written to under the cache folder (`lamp_pl.data.hub.materialize`, keyed by the dataset's
    fingerprints); that folder is found (loading the dataset, written if it is not there yet) only
    with `build`, else the folder is ``""`` (unknown until the grid has built its caches).
    """
    task, _, task_dir = settings.get("task", "LaMP_2").partition("=")
    split_dir = settings["split"].partition("=")[2] if "=" in settings.get("split", "") else ""
    spec = source_of(task)
    if spec is None:
        return split_dir or task_dir or settings.get("data_dir", "data"), task
    if not build:
        return "", task
    from lamp_pl.data.hub import DatasetSource, materialize
    from lamp_pl.tasks import get_task

    name, revision = settings.get("source_name") or spec.name, settings.get("source_revision")
    source = DatasetSource(settings.get("source", ""), name, revision)
    return str(materialize(source, get_task(task), settings.get("cache_dir", DEFAULT_CACHE))), task


def run_samples(settings: dict[str, str], fit: bool) -> int | None:
    """Training samples (questions x epochs) plus test questions of one run; None if unknown."""
    data_dir, task = run_data(settings)
    if not data_dir:
        return None
    test = question_count(data_dir, task, settings.get("test_split", "dev"))
    train = question_count(data_dir, task, settings.get("train_split", "train")) if fit else 0
    if test is None or train is None:
        return None
    return train * int(settings.get("max_epochs", "1")) + test


__all__ = ["DEFAULT_CACHE", "GridPlan", "PlannedRun", "once", "plan_grid", "question_count", "run_data", "run_samples"]
