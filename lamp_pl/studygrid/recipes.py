"""Recipes: a paper's study as a grid file (shipped: `lamp_pl/configs/recipes/`), run by `lamp-pl grid --recipe NAME`.

A recipe names one or more grids (each: configs, axes, options passed on, fit or zero-shot),
the baseline of its intervals, the figures it is compared with and, for LaMP, the leaderboard
submission it writes: one predictions file per task in LaMP's format, checked against the test
questions' ids, zipped.

The figures are copied into the recipe file (never read from elsewhere at run time) under
``published``: a `label` naming their source as the tables print it (``leaderboard, test split,
arXiv 2304.11406``; ``ours, earlier`` for this package's own earlier numbers), the `source`
details, and one entry per condition: ``{grid, values: {axis: value}, system, metrics}`` (`grid`
names the recipe grid the entry belongs to; without it, every grid).
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lamp_pl.errors import ConfigError, LaMPError
from lamp_pl.shipped import RECIPES, resolve_config


class RecipeError(LaMPError):
    """A recipe file that cannot be used (missing, or a field of the wrong shape)."""


@dataclass
class RecipeGrid:
    """One grid of a recipe."""

    name: str
    configs: list[str]
    axes: dict[str, list[str]]
    extra: list[str] = field(default_factory=list)
    fit: bool = True
    predict: bool = False


@dataclass
class Recipe:
    """A study: its grids, baseline, published figures and submission settings."""

    name: str
    description: str
    grids: list[RecipeGrid]
    baseline: str | None = None
    source: dict[str, str] = field(default_factory=dict)
    """Where the published figures come from: paper, arXiv id, version, table."""
    published: list[dict] = field(default_factory=list)
    """One entry per condition; each carries its source's `label` as ``source``."""
    submission: dict[str, Any] | None = None

    def published_for(self, grid: str) -> list[dict]:
        """The published entries that the grid named `grid` is compared with."""
        return [entry for entry in self.published if entry.get("grid", grid) == grid]


def recipe_path(name: str) -> Path:
    """The recipe file `name` stands for: `name` itself when it is a file, else the shipped recipe
    of that name (``lamp_main_table``, with or without ``.yaml``)."""
    try:
        return Path(resolve_config(name, "--recipe", folder=RECIPES))
    except ConfigError as error:
        raise RecipeError(str(error)) from None


def load_recipe(path: Path) -> Recipe:
    """Read a recipe file; raise `RecipeError` naming the file and field that is wrong."""
    import yaml

    document = yaml.safe_load(path.read_text()) or {}
    if not isinstance(document.get("grids"), list) or not document["grids"]:
        raise RecipeError(f"{path}: field 'grids' must be a non-empty list of grids")
    grids = []
    for index, grid in enumerate(document["grids"]):
        if not isinstance(grid, dict) or not isinstance(grid.get("axes"), dict) or not grid.get("configs"):
            raise RecipeError(f"{path}: grids[{index}] needs 'name', 'configs' (a list) and 'axes' (a mapping)")
        axes = {axis: [str(v) for v in values] for axis, values in grid["axes"].items()}
        for config in [*grid["configs"], *axes.get("model", [])]:
            try:  # a file or a shipped name: checked here, read by each run (`lamp-pl fit` resolves names)
                resolve_config(str(config))
            except ConfigError as error:
                raise RecipeError(f"{path}: grids[{index}]: {error}") from None
        grids.append(
            RecipeGrid(
                str(grid.get("name", f"grid{index}")),
                [str(c) for c in grid["configs"]],
                axes,
                [str(e) for e in grid.get("extra", [])],
                bool(grid.get("fit", True)),
                bool(grid.get("predict", False)),
            )
        )
    published = document.get("published", {}) or {}
    label = str(published.get("label") or "published")
    names = {grid.name for grid in grids}
    entries = []
    for index, entry in enumerate(published.get("entries", [])):
        if not isinstance(entry, dict) or not isinstance(entry.get("values"), dict) or not entry.get("metrics"):
            raise RecipeError(f"{path}: published.entries[{index}] needs 'values' and 'metrics' mappings")
        if "grid" in entry and entry["grid"] not in names:
            raise RecipeError(f"{path}: published.entries[{index}].grid {entry['grid']!r} is none of {sorted(names)}")
        entries.append({"source": label, **entry})
    return Recipe(
        path.stem,
        str(document.get("description", "")),
        grids,
        document.get("baseline"),
        {k: str(v) for k, v in (published.get("source") or {}).items()},
        entries,
        document.get("submission"),
    )


def write_submission(predictions: dict[str, Path], questions: dict[str, Path], out: Path) -> Path:
    """Zip one predictions file per task (``<task>.json``: ``{"task", "golds"}``) after checking that
    each holds exactly the ids of its task's test questions.

    Args:
        predictions: Task name -> the predictions file of the run chosen for it.
        questions: Task name -> that task's test questions file.
        out: The zip file to write.

    Raises:
        RecipeError: A task's predictions miss an id of its questions or have an id they lack.
    """
    out.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        for task, path in sorted(predictions.items()):
            golds = json.loads(path.read_text())["golds"]
            ids = [str(g["id"]) for g in golds]
            wanted = {str(q["id"]) for q in json.loads(questions[task].read_text())}
            missing, extra = wanted - set(ids), set(ids) - wanted
            if missing or extra or len(ids) != len(set(ids)):
                raise RecipeError(
                    f"{path}: predictions do not match the test questions of {task} ({questions[task]}): "
                    f"{len(missing)} missing, {len(extra)} not in the questions, {len(ids) - len(set(ids))} repeated"
                )
            archive.writestr(f"{task}.json", json.dumps({"task": task, "golds": golds}))
    return out


Chosen = dict[str, tuple[dict[str, Path], dict[str, Path]]]


def submission_files(plan: Any, select: dict[str, str], split: str, chosen: Chosen) -> Chosen:
    """Add to `chosen` (split protocol -> (task -> predictions, task -> questions file)) the done
    runs of `plan` whose values match `select`: each task's newest ``predictions_<split>.json``."""
    from lamp_pl.data.lamp import split_files
    from lamp_pl.studygrid.plan import run_data
    from lamp_pl.studygrid.report import labels
    from lamp_pl.studygrid.worker import newest

    for run in plan.distinct:
        shown = labels(run.point.values)
        if any(shown.get(axis) != str(value) for axis, value in select.items()):
            continue
        data_dir, task = run_data(run.settings)
        found = newest(run.run_dir, f"predictions_{split}.json")
        if found is None:
            raise RecipeError(f"{run.run_dir}: no predictions_{split}.json to submit for {task}")
        predictions, questions = chosen.setdefault(shown.get("split", "all"), ({}, {}))
        predictions[task], questions[task] = found, split_files(data_dir, task, split)[0]
    return chosen


__all__ = [
    "Recipe",
    "RecipeError",
    "RecipeGrid",
    "load_recipe",
    "recipe_path",
    "submission_files",
    "write_submission",
]
