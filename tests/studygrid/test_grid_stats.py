"""Seeds and error bars: 3 seeds x 2 points give mean/std per condition and a paired bootstrap
interval against the baseline, which this test recomputes from the predictions files itself.

LaMP-3 (ratings, MAE): a few steps teach the tiny model to answer with a digit, and the seed
changes the training order and the random retriever's draws."""

from __future__ import annotations

import json
import statistics

import numpy as np
import pytest
from grid_helpers import grid_args, run_grid, table

from lamp_pl.studygrid.state import read_state

SEEDS = ("0", "1", "2")


def test_three_seeds_give_mean_std_and_a_bootstrap_interval(tiny_t5, data_root, tmp_path):
    out = tmp_path / "grid"
    axes = ["--retriever", "bm25", "random", "--seed", *SEEDS, "--baseline", "retriever=bm25"]
    axes += ["--model.lr", "0.01", "--trainer.limit_train_batches", "5", "--workers", "2", "--resamples", "500"]
    run_grid(grid_args(tiny_t5, data_root, tmp_path, out, *axes, task="LaMP_3"))
    rows = table(out / "results.csv")
    assert len(rows) == 6
    summary = {row["retriever"]: row for row in table(out / "summary.csv")}
    for retriever, row in summary.items():
        values = [float(r["mae"]) for r in rows if r["retriever"] == retriever]
        assert row["seeds"] == "3"
        assert float(row["mae_mean"]) == pytest.approx(statistics.fmean(values))
        assert float(row["mae_std"]) == pytest.approx(statistics.stdev(values))
    assert (out / "plot_retriever.png").read_bytes()[:4] == b"\x89PNG"

    # The interval, recomputed from the predictions files: each question's absolute error (an
    # answer that is no number counts as the rating farthest from the gold, as LaMP scores it).
    outputs = json.loads((data_root / "LaMP_3" / "test_outputs.json").read_text())["golds"]
    golds = {g["id"]: float(g["output"]) for g in outputs}

    def error(output: str, gold: float) -> float:
        try:
            return abs(float(output) - gold)
        except ValueError:
            return max(abs(1 - gold), abs(5 - gold))

    def per_question(retriever: str) -> dict[str, float]:
        seeds = []
        for seed in SEEDS:
            state = read_state(out / f"retriever={retriever}-seed={seed}")
            predicted = json.loads(open(state.predictions).read())["golds"]
            seeds.append({p["id"]: error(p["output"], golds[p["id"]]) for p in predicted})
        return {q: statistics.fmean(s[q] for s in seeds) for q in seeds[0]}

    base, ours = per_question("bm25"), per_question("random")
    questions = sorted(base)
    differences = np.array([ours[q] - base[q] for q in questions])
    picks = np.random.default_rng(0).integers(0, len(questions), size=(500, len(questions)))
    low, high = np.percentile(differences[picks].mean(axis=1), [2.5, 97.5])
    row = summary["random"]
    assert float(row["vs_retriever=bm25"]) == pytest.approx(differences.mean(), abs=1e-6)
    assert (float(row["ci_low"]), float(row["ci_high"])) == pytest.approx((low, high), abs=1e-6)
    assert float(row["ci_low"]) <= float(row["vs_retriever=bm25"]) <= float(row["ci_high"])
    assert "vs_retriever=bm25" not in summary["bm25"] or summary["bm25"]["vs_retriever=bm25"] == ""


def test_summary_intervals_on_varied_predictions(data_root, tmp_path):
    """The same statistics where seeds and conditions answer differently: predictions files written
    here (one rating per question, drawn per seed), read back through the grid's own tables."""
    from lamp_pl.studygrid.axes import Point
    from lamp_pl.studygrid.plan import plan_grid
    from lamp_pl.studygrid.report import summary_rows
    from lamp_pl.studygrid.state import PointState, mark_done

    golds = {
        g["id"]: float(g["output"])
        for g in json.loads((data_root / "LaMP_3" / "test_outputs.json").read_text())["golds"]
    }
    points = [Point({"retriever": r, "seed": s}) for r in ("bm25", "none") for s in SEEDS]
    configured = {"task": "LaMP_3", "data_dir": str(data_root), "test_split": "test", "k": "2"}
    plan = plan_grid(points, configured, [], [], tmp_path, fit=True)
    rng = np.random.default_rng(7)
    states, errors = {}, {}
    for run in plan.runs:
        far = run.point.values["retriever"] == "none"  # the baseline-beating condition is bm25
        noise = rng.integers(-1, 2, size=len(golds))
        answers = {q: str(int(min(5, max(1, (6 - g if far else g) + n)))) for (q, g), n in zip(golds.items(), noise)}
        path = run.run_dir / "predictions_test.json"
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": q, "output": a} for q, a in answers.items()]}))
        errors[run.point.name] = {q: abs(float(a) - golds[q]) for q, a in answers.items()}
        mae = statistics.fmean(errors[run.point.name].values())
        state = mark_done(run.run_dir, PointState(started=1.0), {"mae": mae}, str(path), 0)
        states[run.point.name] = {"status": state.status, "metrics": state.metrics, "predictions": state.predictions}
    rows = {row["retriever"]: row for row in summary_rows(plan, states, ("retriever", "bm25"), resamples=300)}
    for retriever in ("bm25", "none"):
        maes = [statistics.fmean(errors[f"retriever={retriever}-seed={s}"].values()) for s in SEEDS]
        assert rows[retriever]["mae_mean"] == pytest.approx(statistics.fmean(maes))
        assert rows[retriever]["mae_std"] == pytest.approx(statistics.stdev(maes)) and rows[retriever]["mae_std"] > 0
    mean = {
        r: {q: statistics.fmean(errors[f"retriever={r}-seed={s}"][q] for s in SEEDS) for q in golds}
        for r in ("bm25", "none")
    }
    questions = sorted(golds)
    differences = np.array([mean["none"][q] - mean["bm25"][q] for q in questions])
    picks = np.random.default_rng(0).integers(0, len(questions), size=(300, len(questions)))
    low, high = np.percentile(differences[picks].mean(axis=1), [2.5, 97.5])
    row = rows["none"]
    assert row["vs_retriever=bm25"] == pytest.approx(differences.mean()) and row["vs_retriever=bm25"] != 0
    assert (row["ci_low"], row["ci_high"]) == pytest.approx((low, high)) and low < high


def test_plot_error_bars_say_what_they_are():
    from lamp_pl.studygrid.plot import error_bars

    assert error_bars([{"seeds": 3}, {"seeds": 3}]) == "sample std over 3 seeds"
    assert error_bars([{"seeds": 2}, {"seeds": 3}]) == "sample std over 2-3 seeds"
    assert error_bars([{"seeds": 1}]) == "sample std over 1 seed (one seed: no spread)"
