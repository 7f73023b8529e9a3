"""Recipes load and plan (dry run, nothing runs), and the leaderboard submission is checked
against the test questions' ids before it is zipped."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from lamp_pl.cli.grid import main
from lamp_pl.shipped import find_shipped, shipped_names
from lamp_pl.studygrid.axes import check_values
from lamp_pl.studygrid.recipes import RecipeError, load_recipe, recipe_path, write_submission

ROOT = Path(__file__).resolve().parents[2]


def test_the_shipped_recipes_are_the_four_studies():
    assert shipped_names("recipes") == ["annotators", "demo", "lamp_main_table", "profile_roles"]


@pytest.mark.parametrize("name", ["demo", "lamp_main_table", "profile_roles", "annotators"])
def test_every_recipe_loads_with_usable_axes(name):
    recipe = load_recipe(recipe_path(name))
    assert recipe.grids and recipe.description
    for grid in recipe.grids:
        check_values(grid.axes)
        # the grids name shipped configs by name (`lamp-pl fit` resolves them), never by a clone's path
        assert all(find_shipped(config) is not None for config in grid.configs), grid.configs


def test_lamp_recipe_covers_the_main_table():
    recipe = load_recipe(recipe_path("lamp_main_table"))
    tasks = {task for grid in recipe.grids for task in grid.axes["task"]}
    assert tasks == {f"LaMP_{n}" for n in range(1, 8)}
    assert {grid.fit for grid in recipe.grids} == {True, False} and recipe.baseline == "retriever=none"
    assert recipe.submission and all(g.predict for g in recipe.grids if g.fit)


def test_dry_run_prints_points_dedup_caches_and_an_estimate(data_root, tmp_path, capsys):
    args = ["--config", str(ROOT / "tests/conf/tiny.yaml"), "--data.task", "LaMP_2"]
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
    for line in text.splitlines():  # each option once in an index line (the point's value wins)
        if line.startswith("  lamp-pl index "):
            options = [arg for arg in line.split() if arg.startswith("--") and arg != "--config"]
            assert len(options) == len(set(options)), line
    assert "--data.task LaMP_2" in text


def test_dry_run_of_undownloaded_data_says_unknown_per_named_grid(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)  # the recipe names shipped configs; its data folders are not there
    out = tmp_path / "missing-data"
    args = ["--recipe", "lamp_main_table", "--out", str(out), "--dry_run", "--samples_per_second", "10"]
    assert main(args) == 0
    text = capsys.readouterr().out
    recipe = load_recipe(find_shipped("lamp_main_table", "recipes"))
    for grid in recipe.grids:
        assert f"grid {grid.name} ({out / grid.name}):" in text
    assert text.count("samples unknown") == len(recipe.grids)
    assert text.count("estimate: unknown") == len(recipe.grids)
    assert " 0 samples" not in text and "device hours" not in text


def test_estimate_of_partly_known_samples_says_what_it_covers():
    from lamp_pl.studygrid.dryrun import sample_lines

    lines = sample_lines(3, [100, 200], 1, 10.0, None)
    assert lines[0] == "3 runs to do, 300 samples in 2 of them, 1 unknown (data not there yet)"
    assert lines[1].startswith("estimate: 0.008 device hours for the 2 runs whose samples are known (1 unknown")


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


def test_lamp_dry_run_names_the_leaderboard_figure_of_each_point(monkeypatch, tmp_path, capsys):
    """Every point the leaderboard has a figure for says it, with its source and our split; the
    others (random retriever, fine-tuned without a profile) say nothing of the kind."""
    monkeypatch.chdir(tmp_path)  # the recipe names shipped configs, from any folder
    assert main(["--recipe", "lamp_main_table", "--dry_run", "--out", str(tmp_path / "g")]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if line.startswith("  task=")]
    compared = [line for line in lines if "; compared with " in line]
    source = "(leaderboard, test split, arXiv 2304.11406; ours on dev)"
    assert len(compared) == 42 and all(line.endswith(source) for line in compared)
    assert (
        "  task=LaMP_2-split=user-retriever=contriever: pending; compared with FlanT5-base-finetuned + "
        f"Contriever: accuracy 0.556, f1 0.519 {source}"
    ) in lines
    # The zero-shot grid: XXL without a profile is the leaderboard's non-personalized row.
    assert (
        f"  task=LaMP_1-split=user-retriever=none: pending; compared with FlanT5-XXL-zeroshot: accuracy 0.520 {source}"
        in lines
    )
    assert not any("retriever=random" in line for line in compared)
    recipe = load_recipe(find_shipped("lamp_main_table", "recipes"))
    assert {e["grid"] for e in recipe.published} == {g.name for g in recipe.grids}
    assert all(e["source"] == "leaderboard, test split, arXiv 2304.11406" for e in recipe.published)
    assert len(recipe.published_for("zeroshot_xxl")) == 28 and len(recipe.published_for("finetuned_generation")) == 8


def test_summary_prints_the_published_figure_beside_ours_with_its_source(tmp_path):
    """The summary's published columns name their source; the difference is ours minus it, the
    split ours is on is given per row and explained below the table; the plots mark them too."""
    from lamp_pl.studygrid.axes import Point
    from lamp_pl.studygrid.plan import plan_grid
    from lamp_pl.studygrid.plot import published_points
    from lamp_pl.studygrid.report import published_notes, summary_rows, write_table
    from lamp_pl.studygrid.state import PointState, mark_done

    source = "leaderboard, test split, arXiv 2304.11406"
    published = [
        {"source": source, "values": {"retriever": "bm25"}, "system": "FlanT5 + BM25", "metrics": {"accuracy": 0.5}}
    ]
    points = [Point({"retriever": r, "seed": s}) for r in ("bm25", "none") for s in ("0", "1")]
    for split, expected in ((None, "dev"), ("test", "test")):
        configured = {"task": "LaMP_2", "k": "1", **({"test_split": split} if split else {})}
        plan = plan_grid(points, configured, [], [], tmp_path / expected, fit=True)
        states = {}
        for run, accuracy in zip(plan.runs, (0.6, 0.7, 0.2, 0.3), strict=True):
            state = mark_done(run.run_dir, PointState(started=1.0), {"accuracy": accuracy}, "", 0)
            states[run.point.name] = {"status": state.status, "metrics": state.metrics}
        rows = {row["retriever"]: row for row in summary_rows(plan, states, None, published, resamples=0)}
        bm25 = rows["bm25"]
        assert bm25[f"accuracy [{source}]"] == 0.5 and bm25[f"system [{source}]"] == "FlanT5 + BM25"
        assert bm25["diff_accuracy"] == pytest.approx(0.65 - 0.5) and bm25["ours_on"] == expected
        assert not any("[" in key or key == "ours_on" for key in rows["none"])
    _, md = write_table(list(rows.values()), tmp_path / "summary", published_notes(published))
    text = md.read_text()
    assert f"| accuracy [{source}] | diff_accuracy | ours_on |" in text
    assert f"`<metric> [{source}]`: the figure of {source}" in text and "(dev unless test golds are given)" in text
    assert published_points(list(rows.values()), "retriever", "accuracy") == {source: [("bm25", 0.5)]}


def test_the_demo_recipe_labels_its_figures_as_our_own_earlier_numbers():
    recipe = load_recipe(find_shipped("demo", "recipes"))
    assert recipe.published and all(e["source"] == "ours, earlier" for e in recipe.published)
