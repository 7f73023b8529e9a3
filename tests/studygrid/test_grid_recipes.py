"""Recipes load and plan (dry run, nothing runs), and the leaderboard submission is checked
against the test questions' ids before it is zipped."""

from __future__ import annotations

import json
import zipfile

import pytest

from lamp_pl.cli.grid import main
from lamp_pl.studygrid.axes import check_values
from lamp_pl.studygrid.recipes import RECIPES, RecipeError, load_recipe, write_submission


@pytest.mark.parametrize("name", ["demo", "lamp_main_table", "profile_roles", "annotators"])
def test_every_recipe_loads_with_usable_axes(name):
    recipe = load_recipe(RECIPES / f"{name}.yaml")
    assert recipe.grids and recipe.description
    for grid in recipe.grids:
        check_values(grid.axes)
        assert all((RECIPES.parents[1] / config).is_file() for config in grid.configs)


def test_lamp_recipe_covers_the_main_table():
    recipe = load_recipe(RECIPES / "lamp_main_table.yaml")
    tasks = {task for grid in recipe.grids for task in grid.axes["task"]}
    assert tasks == {f"LaMP_{n}" for n in range(1, 8)}
    assert {grid.fit for grid in recipe.grids} == {True, False} and recipe.baseline == "retriever=none"
    assert recipe.submission and all(g.predict for g in recipe.grids if g.fit)


def test_dry_run_prints_points_dedup_caches_and_an_estimate(data_root, tmp_path, capsys):
    args = ["--config", str(RECIPES.parents[1] / "tests/conf/tiny.yaml"), "--data.task", "LaMP_2"]
    args += ["--data.data_dir", str(data_root), "--data.cache_dir", str(tmp_path / "cache")]
    args += ["--retriever", "bm25", "none", "--k", "0", "2", "--seed", "0", "1", "--out", str(tmp_path / "g")]
    assert main([*args, "--dry_run", "--samples_per_second", "10", "--devices_per_point", "2"]) == 0
    text = capsys.readouterr().out
    # k=0 and retriever none are one run per seed; bm25 with k=2 is one more per seed.
    assert "8 points:" in text and "4 distinct runs (4 deduplicated)" in text
    assert "retriever=none-k=2-seed=1: same as retriever=bm25-k=0-seed=1 (not run again)" in text
    assert text.count("  lamp-pl index ") == 4  # the seed sets the random retrievers' seed
    # One epoch (tiny.yaml) over the train questions plus the test questions, per run.
    count = {s: len(json.loads((data_root / "LaMP_2" / f"{s}_questions.json").read_text())) for s in ("train", "test")}
    samples = 4 * (count["train"] + count["test"])
    assert f"4 runs to do, {samples} samples" in text
    assert f"estimate: {samples / 10 * 2 / 3600:.3f} device hours at 10.00 samples/s per point (given)" in text
    assert not (tmp_path / "g").exists()


def test_submission_is_checked_against_the_test_questions(tmp_path):
    questions = tmp_path / "test_questions.json"
    questions.write_text(
        json.dumps([{"id": "1", "input": "a", "profile": []}, {"id": "2", "input": "b", "profile": []}])
    )
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"task": "LaMP_2", "golds": [{"id": "1", "output": "x"}, {"id": "2", "output": "y"}]}))
    path = write_submission({"LaMP_2": good}, {"LaMP_2": questions}, tmp_path / "sub.zip")
    with zipfile.ZipFile(path) as archive:
        assert archive.namelist() == ["LaMP_2.json"]
        assert json.loads(archive.read("LaMP_2.json"))["golds"][1] == {"id": "2", "output": "y"}
    short = tmp_path / "short.json"
    short.write_text(json.dumps({"task": "LaMP_2", "golds": [{"id": "1", "output": "x"}]}))
    with pytest.raises(RecipeError, match="1 missing"):
        write_submission({"LaMP_2": short}, {"LaMP_2": questions}, tmp_path / "bad.zip")
