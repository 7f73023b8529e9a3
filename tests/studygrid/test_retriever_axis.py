"""The grid's retriever axis takes retriever names and the shipped fragments (bge, e5, hybrid...)."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from lamp_pl.cli import main
from lamp_pl.studygrid.axes import GridAxisError, combinations, config_args, label, override_args


def test_fragments_are_axis_values(capsys):
    points = combinations({"retriever": ["bm25", "bge", "e5", "gte", "hybrid", "contriever_rerank"]})
    assert [label("retriever", p.values["retriever"]) for p in points][:2] == ["bm25", "bge"]
    bm25, bge = points[0].values, points[1].values
    assert override_args(bm25) == ["--data.retrieval.retriever", "bm25"] and config_args(bm25) == []
    fragment = config_args(bge)
    assert fragment[0] == "--config" and Path(fragment[1]).name == "bge.yaml" and override_args(bge) == []
    assert override_args(points[4].values) == ["--data.retrieval.retriever", "hybrid"]  # a retriever's own name
    with pytest.raises(GridAxisError, match="neither a retriever"):
        combinations({"retriever": ["no_such_retriever"]})
    with pytest.raises(GridAxisError, match="no such config fragment"):
        combinations({"retriever": ["missing/fragment.yaml"]})
    # The command line a point gets parses, with the fragment's settings in place.
    with pytest.raises(SystemExit):
        main(["fit", "--config", "task/LaMP_2", *fragment, "--print_config"])
    retrieval = yaml.safe_load(capsys.readouterr().out)["data"]["retrieval"]
    assert retrieval["encoder"] == "BAAI/bge-base-en-v1.5" and retrieval["pooling"] == "cls"
