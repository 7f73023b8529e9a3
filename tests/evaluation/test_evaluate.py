"""`lamp-pl evaluate` scores a predictions file as `lamp-pl test` does; a split without golds
writes predictions only."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from helpers import tiny_args
from lamp_pl.cli import main
from lamp_pl.cli.evaluate import evaluate
from lamp_pl.data.lamp import LaMPDataError, split_files


def _newest(root: Path, name: str) -> Path:
    return max(root.rglob(name), key=lambda p: p.stat().st_mtime)


@pytest.mark.parametrize("task", ["LaMP_1", "LaMP_3", "LaMP_7"])
def test_evaluate_equals_test_metrics(task, tiny_t5, data_root, tmp_path, capsys):
    main(["test", *tiny_args(tiny_t5, data_root, tmp_path, task)])
    preds = _newest(tmp_path / "runs", "predictions_test.json")
    tested = json.loads(_newest(tmp_path / "runs", "metrics_test.json").read_text())
    golds = split_files(data_root, task, "test")[1]
    scores = evaluate(task, golds, preds)
    assert scores == pytest.approx({name.removeprefix("test/"): value for name, value in tested.items()}, abs=1e-9)
    capsys.readouterr()
    assert main(["evaluate", "--task", task, "--golds", str(golds), "--preds", str(preds)]) == 0
    assert json.loads(capsys.readouterr().out) == scores


def test_ids_are_checked_both_ways(tmp_path):
    golds, preds = tmp_path / "golds.json", tmp_path / "preds.json"
    golds.write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": "5"}, {"id": "2", "output": "1"}]}))
    preds.write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": "4"}, {"id": "9", "output": "3"}]}))
    with pytest.raises(
        LaMPDataError, match=r"preds\.json.*1 gold id\(s\) have no prediction: '2'.*not in the golds.*'9'"
    ):
        evaluate("LaMP_3", golds, preds)
    preds.write_text(
        json.dumps({"task": "LaMP_3", "golds": [{"id": "1", "output": "nan"}, {"id": "2", "output": "1"}]})
    )
    assert evaluate("LaMP_3", golds, preds) == {"mae": 2.0, "rmse": pytest.approx(8**0.5)}  # nan: the far end, 1
    preds.write_text(json.dumps({"task": "LaMP_3", "golds": [{"id": "1"}]}))
    with pytest.raises(LaMPDataError, match=r"preds\.json, record 0.*field 'output'"):
        evaluate("LaMP_3", golds, preds)
    preds.write_text(json.dumps({"task": "LaMP_4", "golds": []}))
    with pytest.raises(LaMPDataError, match="LaMP_4"):
        evaluate("LaMP_3", golds, preds)


def test_split_without_golds_writes_predictions_only(tiny_t5, tmp_path):
    from lamp_pl.data.synthetic import write_synthetic

    data = tmp_path / "data"
    write_synthetic(data, task="LaMP_3", users=10, profile_size=(3, 5), test_outputs=False)
    main(["test", *tiny_args(tiny_t5, data, tmp_path, "LaMP_3")])
    assert list((tmp_path / "runs").rglob("predictions_test.json"))
    assert not list((tmp_path / "runs").rglob("metrics_test.json"))
