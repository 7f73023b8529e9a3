"""No silent no-ops: study options that cannot change a prompt are errors; equal grid points run once."""

from __future__ import annotations

import argparse

import pytest

from lamp_pl.cli.grid import combinations, distinct_points
from lamp_pl.prompts import PromptOptions
from lamp_pl.retrieval.config import RetrievalConfig
from lamp_pl.studies import check_study_options
from lamp_pl.tasks import get_task


def check(task="LaMP_2", k=3, offset=0, retriever="bm25", k_max=16, **prompt):
    check_study_options(
        get_task(task), k, offset, RetrievalConfig(retriever=retriever, k_max=k_max), PromptOptions(**prompt)
    )


@pytest.mark.parametrize(
    "options,match",
    [
        ({"k": 1, "order": "end"}, r"prompt\.order='end'.*k=1 gives one item"),
        ({"k": 1, "order": "random"}, r"prompt\.order='random'"),
        ({"k": 1, "ablation": "decouple"}, r"prompt\.ablation='decouple'.*one item"),
        ({"k": 0, "order": "middle"}, r"prompt\.order='middle'.*no profile items"),
        ({"k": 0, "ablation": "decouple"}, r"prompt\.ablation='decouple'.*no profile items"),
        ({"k": 2, "retriever": "none", "order": "end"}, r"prompt\.order.*retriever='none'"),
        ({"k": 0, "offset": 2}, r"offset=2.*no profile items"),
        ({"task": "LaMP_7", "ablation": "decouple"}, r"prompt\.ablation='decouple'.*LaMP_7.*free text"),
        ({"task": "LaMP_1", "retriever": "mixed"}, r"retrieval\.retriever='mixed'.*LaMP_1"),
        ({"k": 4, "offset": 13, "k_max": 16}, r"offset=13 with k=4 reaches rank 17, beyond retrieval\.k_max=16"),
        ({"k": 0.5, "offset": 16, "k_max": 16}, r"offset=16.*beyond retrieval\.k_max=16"),
    ],
)
def test_no_op_options_are_rejected(options, match):
    with pytest.raises(ValueError, match=match):
        check(**options)


@pytest.mark.parametrize(
    "options",
    [
        {},
        {"k": 2, "order": "end"},
        {"k": 2, "ablation": "decouple"},
        {"k": 0.3, "order": "middle"},
        {"k": 0.3, "ablation": "decouple"},
        {"k": 1, "ablation": "only_output"},
        {"k": 0, "user_context": "user_id"},
        {"task": "LaMP_2", "retriever": "mixed"},
        {"task": "LaMP_4", "ablation": "decouple"},
        {"k": 4, "offset": 12, "k_max": 16},
        {"k": 4, "offset": 40, "k_max": -1},
    ],
)
def test_options_that_change_prompts_are_accepted(options):
    check(**options)


def test_datamodule_rejects_a_no_op_option():
    from lamp_pl.lightning.datamodule import LaMPDataModule

    with pytest.raises(ValueError, match="prompt.order"):
        LaMPDataModule(
            task="LaMP_2", k=1, retrieval=RetrievalConfig(retriever="bm25"), prompt=PromptOptions(order="end")
        )


def test_equal_grid_points_run_once():
    args = argparse.Namespace(
        retriever=["bm25", "random", "none"],
        k=["0", "1", "2"],
        ablation=None,
        order=["start", "end"],
        user_context=None,
    )
    points = distinct_points(combinations(args), {"ablation": "both"})
    firsts = [first for _, _, first in points]
    runs = [(point, overrides) for index, (point, overrides, first) in enumerate(points) if first == index]
    # k=0 and retriever none are one point; k=1 has one order; k=2 keeps both orders per retriever.
    assert len(points) == 18 and len(runs) == 1 + 2 + 4
    assert all(
        o["retriever"] == "none" and o["k"] == "0" and o["order"] == "start"
        for p, o in runs
        if p["k"] == "0" or p["retriever"] == "none"
    )
    assert {(p["retriever"], p["k"], p["order"]) for p, _ in runs if p["k"] != "0" and p["retriever"] != "none"} == {
        ("bm25", "1", "start"),
        ("random", "1", "start"),
        ("bm25", "2", "start"),
        ("bm25", "2", "end"),
        ("random", "2", "start"),
        ("random", "2", "end"),
    }
    assert firsts[1] == 0  # bm25, k=0, order=end is bm25, k=0, order=start
