"""Per-annotator converters on schema-exact sample files, and both split protocols."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest

from lamp_pl.data.annotators import (
    EMOTIONS,
    UNHEALTHY_COLUMNS,
    convert_goemotions,
    convert_unhealthy,
)
from lamp_pl.data.lamp import LaMPDataError, load_split
from lamp_pl.demo.annotators import AnnotatorSpec, write_raw_csv
from lamp_pl.tasks import get_task


def _write(path: Path, header: list[str], rows: list[dict]) -> Path:
    with path.open("w", newline="") as stream:
        writer = csv.DictWriter(stream, fieldnames=header)
        writer.writeheader()
        writer.writerows(rows)
    return path


def _goemotions(tmp_path: Path, raters: int = 4, texts: int = 12, drop: str | None = None) -> list[Path]:
    header = [
        "text",
        "id",
        "author",
        "subreddit",
        "link_id",
        "parent_id",
        "created_utc",
        "rater_id",
        "example_very_unclear",
        *EMOTIONS,
    ]
    rows = []
    for r in range(raters):
        for t in range(texts if r else 3):  # rater 0 has only 3 rows: below the minimum
            emotions = {EMOTIONS[(t + r) % 5], "joy"} if t % 2 else set()
            rows.append(
                {
                    "text": f"comment number {t}, with a comma",
                    "id": f"e{t}",
                    "author": "a",
                    "subreddit": "s",
                    "link_id": "l",
                    "parent_id": "p",
                    "created_utc": "0",
                    "rater_id": str(r),
                    "example_very_unclear": "True" if t == 5 else "False",
                    **{e: int(e in emotions) for e in EMOTIONS},
                }
            )
    header = [h for h in header if h != drop]
    rows = [{k: v for k, v in row.items() if k != drop} for row in rows]
    half = len(rows) // 2
    return [
        _write(tmp_path / "goemotions_1.csv", header, rows[:half]),
        _write(tmp_path / "goemotions_2.csv", header, rows[half:]),
    ]


def test_goemotions_known_users(tmp_path: Path) -> None:
    summary = convert_goemotions(_goemotions(tmp_path), tmp_path / "out", min_annotations=5, seed=3)
    assert summary["dropped_annotators"] == 1 and summary["dropped_annotator_ids"] == ["0"]
    assert summary["dropped_unclear"] == 3 and summary["annotators_kept"] == 3
    task = get_task(summary["tasks"]["GoEmotions"]["spec"])
    assert task.metric_kind == "multilabel" and task.labels == EMOTIONS and task.monitor == "f1_macro"
    splits = {s: load_split(tmp_path / "out", task, s) for s in ("train", "dev", "test")}
    assert sum(map(len, splits.values())) == 3 * 11
    assert {q.user_id for q in splits["train"]} == {"1", "2", "3"}  # every annotator seen in training
    for question in (q for qs in splits.values() for q in qs):
        text_id = question.id.split("-", 1)[1]
        assert all(item["id"] != question.id for item in question.profile)  # never the own text
        assert all(item["id"].startswith(question.user_id + "-") for item in question.profile)
        assert len(question.profile) == 10 and text_id != "e5"
        assert question.output in ("none",) or "joy" in question.output
    item = splits["train"][0].profile[0]
    assert set(item) == {"id", "text", "labels"}
    # Same seed, same files.
    again = convert_goemotions(_goemotions(tmp_path), tmp_path / "again", min_annotations=5, seed=3)
    assert again["tasks"]["GoEmotions"]["questions"] == summary["tasks"]["GoEmotions"]["questions"]
    assert (tmp_path / "out/GoEmotions/test_questions.json").read_text() == (
        tmp_path / "again/GoEmotions/test_questions.json"
    ).read_text()


def test_held_out_users_never_in_train(tmp_path: Path) -> None:
    raw = write_raw_csv(tmp_path / "raw.csv", AnnotatorSpec(annotators=10, texts=60, annotations_per_annotator=15))
    summary = convert_goemotions([raw], tmp_path / "out", split="held_out_users", min_annotations=10)
    task = get_task(summary["tasks"]["GoEmotions"]["spec"])
    users = {s: {q.user for q in load_split(tmp_path / "out", task, s)} for s in ("train", "dev", "test")}
    assert users["train"] and users["dev"] and users["test"]
    assert not users["train"] & (users["dev"] | users["test"]) and not users["dev"] & users["test"]
    assert summary["annotators"] == {"train": 7, "dev": 1, "test": 2}
    assert summary["dropped_annotators"] == 2  # the generator's sparse annotators
    for split in ("dev", "test"):  # held-out profiles are support texts that are never asked
        questions = load_split(tmp_path / "out", task, split)
        asked = {q.id for q in questions}
        assert all(item["id"] not in asked for q in questions for item in q.profile)
        assert all(len(q.profile) >= 7 for q in questions)


@pytest.mark.parametrize("dataset", ["goemotions", "unhealthy"])
def test_missing_column_names_file_and_column(tmp_path: Path, dataset: str) -> None:
    if dataset == "goemotions":
        paths, column, convert = _goemotions(tmp_path, drop="rater_id"), "rater_id", convert_goemotions
    else:
        column, convert = "_trust", convert_unhealthy
        paths = [_write(tmp_path / "unhealthy_full.csv", ["_unit_id", "comment", "_worker_id", *UNHEALTHY_COLUMNS], [])]
    with pytest.raises(LaMPDataError, match=rf"{paths[0].name}.*'{column}'"):
        convert(paths, tmp_path / "out")


def test_unhealthy_binary_and_attributes(tmp_path: Path) -> None:
    header = [
        "_unit_id",
        "_golden",
        "_unit_state",
        "_trusted_judgments",
        "_last_judgment_at",
        "_trust",
        "_worker_id",
        "comment",
        *UNHEALTHY_COLUMNS,
        "replyto",
    ]
    rows = []
    for worker in range(3):
        for unit in range(8):
            flags = {"healthy"} if unit % 3 == 0 else {"hostile", "sarcastic"} if unit % 3 == 1 else {"dismissive"}
            rows.append(
                {
                    "_unit_id": 100 + unit,
                    "_golden": "false",
                    "_unit_state": "finalized",
                    "_trusted_judgments": 3,
                    "_last_judgment_at": "x",
                    "_trust": 0.9,
                    "_worker_id": 7000 + worker,
                    "comment": f'he said "no"\nline {unit}',
                    "replyto": "",
                    **{c: int(c in flags) for c in UNHEALTHY_COLUMNS},
                }
            )
    raw = _write(tmp_path / "unhealthy_full.csv", header, rows)
    summary = convert_unhealthy([raw], tmp_path / "out", min_annotations=4)
    assert set(summary["tasks"]) == {"Unhealthy_healthy", "Unhealthy_attributes"}
    binary = get_task(summary["tasks"]["Unhealthy_healthy"]["spec"])
    attributes = get_task(summary["tasks"]["Unhealthy_attributes"]["spec"])
    golds = {q.id: q.output for s in ("train", "dev", "test") for q in load_split(tmp_path / "out", binary, s)}
    assert golds["7000-100"] == "healthy" and golds["7000-101"] == "unhealthy"
    golds = {q.id: q.output for s in ("train", "dev", "test") for q in load_split(tmp_path / "out", attributes, s)}
    assert golds["7001-101"] == "hostile, sarcastic" and golds["7001-100"] == "none"
    assert "healthy" not in attributes.labels and attributes.metric_kind == "multilabel"
    question = json.loads((tmp_path / "out/Unhealthy_attributes/train_questions.json").read_text())[0]
    assert question["input"].endswith(question["input"].split("comment: ", 1)[1])
