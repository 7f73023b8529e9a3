"""The LaMP data layer: the loader, `lamp-pl check-data`, and the synthetic generator.

Real LaMP shapes are mimicked by small hand-written records (`real_split`); the synthetic data
comes from the session fixture `data_root` or from `generate` in memory.
"""

from __future__ import annotations

import dataclasses
import json
import os
import statistics
from collections import Counter, defaultdict
from collections.abc import Callable
from pathlib import Path

import pytest

from lamp_pl.cli import main
from lamp_pl.data.check import check_data
from lamp_pl.data.lamp import SPLITS, LaMPDataError, available_splits, load_split
from lamp_pl.data.synthetic import SyntheticSpec, generate, write_synthetic
from lamp_pl.errors import ConfigError
from lamp_pl.tasks import get_task, task_names

# --------------------------------------------------------------------------------------------
# Hand-written records shaped like the genuine LaMP files.

_INPUTS = {
    "LaMP_1": 'For an author who has written the paper with the title "Neural ranking for personal search", '
    "which reference is related? Just answer with [1] or [2] without explanation. "
    '[1]: "Learning to rank with user history" [2]: "Soil moisture in arid regions"',
    "LaMP_2": "Which tag does this movie relate to among the following tags? Just answer with the tag name without "
    "further explanation. tags: [sci-fi, based on a book, comedy, action, twist ending, dystopia, dark "
    "comedy, classic, psychology, fantasy, romance, thought-provoking, social commentary, violence, true "
    "story] description: A hacker learns that the world he lives in is a simulation.",
    "LaMP_2N": "Which category does this article relate to among the following categories? Just answer with the "
    "category name without further explanation. categories: [travel, education, parents, style & "
    "beauty, entertainment, food & drink, science & technology, business, sports, healthy living, "
    "women, politics, crime, culture & arts, religion] article: The senate passed the budget bill.",
    "LaMP_3": "What is the score of the following review on a scale of 1 to 5? just answer with 1, 2, 3, 4, or 5 "
    "without further explanation. review: Works as described, but the battery could last longer.",
    "LaMP_4": "Generate a headline for the following article: The city council approved a new bike lane plan.",
}
_ITEMS = {  # the fields of one profile item besides "id"; LaMP_1's genuine items have no date
    "LaMP_1": {"title": "Personalized query expansion", "abstract": "We expand queries with user history."},
    "LaMP_2": {"tag": "classic", "description": "A young lion prince flees his kingdom."},
    "LaMP_2N": {
        "text": "Lawmakers debated the tax plan.",
        "title": "Tax plan debated",
        "category": "politics",
        "date": "20140312",
    },
    "LaMP_3": {"text": "Great value for the price.", "score": "5"},
    "LaMP_4": {"text": "The mayor opened the new library.", "title": "Library opens downtown", "date": "2017-05-01"},
}
_GOLDS = {
    "LaMP_1": "[1]",
    "LaMP_2": "sci-fi",
    "LaMP_2N": "politics",
    "LaMP_3": "4",
    "LaMP_4": "Council approves bike lanes",
}
_OUTPUT_TASK = {"LaMP_2N": "LaMP_2"}
"""The genuine LaMP_2N (first-release news) outputs file names its task "LaMP_2"."""
_QUERIES = {
    "LaMP_1": "Learning to rank with user history Soil moisture in arid regions",
    "LaMP_2": "A hacker learns that the world he lives in is a simulation.",
    "LaMP_2N": "The senate passed the budget bill.",
    "LaMP_3": "Works as described, but the battery could last longer.",
    "LaMP_4": "The city council approved a new bike lane plan.",
}


def real_split(task: str, questions: int = 3, items: int = 2) -> tuple[list[dict], dict]:
    """A small valid (questions, outputs) pair in the shape of the genuine `task` files.

    Question ids are "100", "101", ...; profile item ids append the item's position.
    """
    records = [
        {
            "id": str(100 + i),
            "input": _INPUTS[task],
            "profile": [{**_ITEMS[task], "id": f"{100 + i}{j}"} for j in range(items)],
        }
        for i in range(questions)
    ]
    golds = {"task": _OUTPUT_TASK.get(task, task), "golds": [{"id": r["id"], "output": _GOLDS[task]} for r in records]}
    return records, golds


def write_split(
    folder: Path,
    split: str,
    questions: list | str,
    outputs: dict | str | None = None,
    *,
    nested: bool = False,
    questions_name: str | None = None,
) -> Path:
    """Write a split's files into `folder` (or `folder/<split>/` when `nested`); strings go verbatim.

    Returns:
        The path of the questions file.
    """
    base = folder / split if nested else folder
    base.mkdir(parents=True, exist_ok=True)
    documents = [(base / (questions_name or f"{split}_questions.json"), questions)]
    if outputs is not None:
        documents.append((base / f"{split}_outputs.json", outputs))
    for path, document in documents:
        path.write_text(document if isinstance(document, str) else json.dumps(document, indent=1))
    return documents[0][0]


def snapshot(root: Path) -> dict[str, bytes]:
    """Every file under `root` with its content, to show that a command wrote nothing."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def run_check(capsys, task: str, data_dir: Path, *extra: str) -> tuple[int, dict | None, str]:
    """Run `lamp-pl check-data` in-process.

    Returns:
        The exit code, the parsed JSON summary (None on failure) and stderr.
    """
    try:
        code = main(["check-data", "--task", task, "--data-dir", str(data_dir), *extra])
    except SystemExit as exit_:  # a user error: one line and exit status 2, from the error boundary
        code = exit_.code
    captured = capsys.readouterr()
    return code, json.loads(captured.out) if code == 0 else None, captured.err


def expected_summary(questions_file: Path) -> dict:
    """Counts computed straight from a questions file, independently of the loader."""
    text = questions_file.read_text()
    try:
        records = json.loads(text)
    except json.JSONDecodeError:
        records = [json.loads(line) for line in text.splitlines() if line.strip()]
    sizes = [len(r["profile"]) for r in records]
    return {
        "questions": len(records),
        "users": len({r.get("user_id", r["id"]) for r in records}),
        "profile_items": sum(sizes),
        "profile_size": {"min": min(sizes), "median": statistics.median(sizes), "max": max(sizes)},
    }


def assert_summary(entry: dict, questions_file: Path) -> None:
    """`entry` (one split of check-data's JSON) matches the counts of `questions_file`."""
    assert {k: entry[k] for k in ("questions", "users", "profile_items", "profile_size")} == expected_summary(
        questions_file
    )
    assert entry["files"][0] == str(questions_file)


# --------------------------------------------------------------------------------------------
# check-data on good data.


@pytest.mark.parametrize("task", task_names())
def test_check_data_summarizes_every_task(data_root: Path, capsys, task: str) -> None:
    before = snapshot(data_root / task)
    code, summary, err = run_check(capsys, task, data_root)
    assert code == 0, err
    assert summary["task"] == task
    assert sorted(summary["splits"]) == sorted(SPLITS)
    for split, entry in summary["splits"].items():
        assert_summary(entry, data_root / task / f"{split}_questions.json")
        assert entry["has_outputs"] is True
        assert entry["files"][1] == str(data_root / task / f"{split}_outputs.json")
    assert snapshot(data_root / task) == before


@pytest.mark.parametrize("layout", ["flat", "nested", "task-folder"])
def test_check_data_layouts(data_root: Path, tmp_path: Path, capsys, layout: str) -> None:
    """`<root>/<task>/<split>_questions.json`, `<root>/<task>/<split>/...`, and data_dir = the task folder."""
    task = "LaMP_4"
    folder = tmp_path / task
    for split in SPLITS:
        write_split(
            folder,
            split,
            (data_root / task / f"{split}_questions.json").read_text(),
            (data_root / task / f"{split}_outputs.json").read_text(),
            nested=layout == "nested",
        )
    code, summary, err = run_check(capsys, task, folder if layout == "task-folder" else tmp_path)
    assert code == 0, err
    for split in SPLITS:
        base = folder / split if layout == "nested" else folder
        assert_summary(summary["splits"][split], base / f"{split}_questions.json")
        assert summary["splits"][split]["files"][1] == str(base / f"{split}_outputs.json")


def test_check_data_selected_split(data_root: Path, capsys) -> None:
    code, summary, err = run_check(capsys, "LaMP_2", data_root, "--split", "dev")
    assert code == 0, err
    assert list(summary["splits"]) == ["dev"]
    assert list(check_data("LaMP_2", data_root, ["test", "train"])["splits"]) == ["test", "train"]


@pytest.mark.parametrize("name", ["train_questions.json", "train_questions.jsonl"])
def test_lamp3_train_as_json_lines(tmp_path: Path, capsys, name: str) -> None:
    questions, outputs = real_split("LaMP_3", questions=4)
    path = write_split(
        tmp_path / "LaMP_3", "train", "\n".join(json.dumps(q) for q in questions) + "\n", outputs, questions_name=name
    )
    loaded = load_split(tmp_path, "LaMP_3", "train")
    assert [q.id for q in loaded] == ["100", "101", "102", "103"]
    assert all(q.output == "4" and len(q.profile) == 2 for q in loaded)
    code, summary, err = run_check(capsys, "LaMP_3", tmp_path)
    assert code == 0, err
    assert_summary(summary["splits"]["train"], path)


def test_test_split_without_outputs(tmp_path: Path, capsys) -> None:
    folder = write_synthetic(tmp_path, task="LaMP_5", users=10, profile_size=(2, 4), test_outputs=False)
    assert not (folder / "test_outputs.json").exists()
    assert all(q.output is None for q in load_split(tmp_path, "LaMP_5", "test"))
    assert all(q.output is not None for q in load_split(tmp_path, "LaMP_5", "dev"))
    code, summary, err = run_check(capsys, "LaMP_5", tmp_path)
    assert code == 0, err
    assert summary["splits"]["test"]["has_outputs"] is False
    assert summary["splits"]["test"]["files"] == [str(folder / "test_questions.json")]


def test_time_based_users_counted_by_user_id(tmp_path: Path, capsys) -> None:
    write_synthetic(tmp_path, task="LaMP_4", users=5, profile_size=(2, 4), questions_per_user=2, time_based=True)
    train = load_split(tmp_path, "LaMP_4", "train")
    assert len(train) == 10
    assert all(q.user == q.user_id and q.user_id is not None for q in train)
    code, summary, err = run_check(capsys, "LaMP_4", tmp_path)
    assert code == 0, err
    for split in SPLITS:
        entry = summary["splits"][split]
        assert (entry["questions"], entry["users"]) == (10, 5)
        assert_summary(entry, tmp_path / "LaMP_4" / f"{split}_questions.json")


def test_empty_profile_is_allowed(tmp_path: Path, capsys) -> None:
    questions, outputs = real_split("LaMP_4")
    questions[1]["profile"] = []
    write_split(tmp_path / "LaMP_4", "dev", questions, outputs)
    assert load_split(tmp_path, "LaMP_4", "dev")[1].profile == []
    code, summary, err = run_check(capsys, "LaMP_4", tmp_path)
    assert code == 0, err
    assert summary["splits"]["dev"]["profile_size"]["min"] == 0
    assert summary["splits"]["dev"]["empty_profiles"] == 1


# --------------------------------------------------------------------------------------------
# Real LaMP shapes.


@pytest.mark.parametrize("task", sorted(_INPUTS))
def test_real_shapes_load(tmp_path: Path, task: str) -> None:
    """Records shaped like the genuine files load, golds join by id and the query is found."""
    questions, outputs = real_split(task)
    write_split(tmp_path, "dev", questions, outputs)  # data_dir is the task folder itself
    loaded = load_split(tmp_path, task, "dev")
    assert [(q.id, q.output, q.user) for q in loaded] == [(r["id"], _GOLDS[task], r["id"]) for r in questions]
    assert loaded[0].profile == questions[0]["profile"]
    assert get_task(task).query(loaded[0].input) == _QUERIES[task]


def test_lamp2n_data_is_not_lamp2(tmp_path: Path, capsys) -> None:
    """LaMP_2N's outputs file says "LaMP_2"; read as LaMP_2 its news categories are not movie tags."""
    questions, outputs = real_split("LaMP_2N")
    write_split(tmp_path, "dev", questions, outputs)
    assert json.loads((tmp_path / "dev_outputs.json").read_text())["task"] == "LaMP_2"
    code, summary, err = run_check(capsys, "LaMP_2N", tmp_path)
    assert code == 0, err
    before = snapshot(tmp_path)
    code, _, err = run_check(capsys, "LaMP_2", tmp_path)
    assert code != 0
    for needle in (str(tmp_path / "dev_outputs.json"), "record 0 (id '100')", "field 'output'", "'politics'"):
        assert needle in err
    assert snapshot(tmp_path) == before


# --------------------------------------------------------------------------------------------
# Bad input: rejected, naming file, record and field; nothing written.

Mutation = Callable[[list, dict], object]
_BAD = [
    # task, mutation of (questions, outputs), the file named, other substrings of the message
    ("LaMP_4", lambda q, o: q[1].pop("input"), "questions", ["record 1 (id '101')", "field 'input'"]),
    ("LaMP_4", lambda q, o: q[1].pop("id"), "questions", ["record 1", "field 'id'", "missing"]),
    ("LaMP_4", lambda q, o: q[1].pop("profile"), "questions", ["record 1 (id '101')", "field 'profile'"]),
    (
        "LaMP_4",
        lambda q, o: q[2]["profile"][1].pop("title"),
        "questions",
        ["record 2 (id '102')", "field 'profile[1].title'", "id '1021'"],
    ),
    ("LaMP_4", lambda q, o: q[2].update(id="100"), "questions", ["record 2 (id '100')", "field 'id'", "duplicate"]),
    (
        "LaMP_4",
        lambda q, o: o["golds"][2].update(id="100"),
        "outputs",
        ["record 2 (id '100')", "field 'id'", "duplicate"],
    ),
    (
        "LaMP_4",
        lambda q, o: o["golds"].append({"id": "999", "output": "x"}),
        "outputs",
        ["record 3 (id '999')", "field 'id'", "no question"],
    ),
    ("LaMP_4", lambda q, o: o["golds"].pop(1), "questions", ["record 1 (id '101')", "field 'id'", "no gold"]),
    ("LaMP_4", lambda q, o: o.update(task="LaMP_5"), "outputs", ["field 'task'", "'LaMP_5'"]),
    (
        "LaMP_2",
        lambda q, o: q[0].update(input=q[0]["input"].replace("description:", "plot:")),
        "questions",
        ["record 0 (id '100')", "field 'input'", "'description:'"],
    ),
    (
        "LaMP_1",
        lambda q, o: q[0].update(input='Which reference is related? [1]: "a"'),
        "questions",
        ["record 0 (id '100')", "field 'input'"],
    ),
    (
        "LaMP_3",
        lambda q, o: o["golds"][0].update(output="five"),
        "outputs",
        ["record 0 (id '100')", "field 'output'", "'five' is not a number"],
    ),
]
_BAD_IDS = [
    "question-without-input",
    "question-without-id",
    "question-without-profile",
    "item-without-title",
    "duplicate-question-id",
    "duplicate-output-id",
    "output-without-question",
    "question-without-output",
    "outputs-of-another-task",
    "input-without-marker",
    "lamp1-input-without-quotes",
    "non-numeric-rating",
]


def assert_rejected(capsys, task: str, data_dir: Path, needles: list[str]) -> None:
    """check-data exits non-zero, names every needle on stderr, and writes nothing."""
    before = snapshot(data_dir)
    code, summary, err = run_check(capsys, task, data_dir)
    assert code != 0 and summary is None
    missing = [n for n in needles if n not in err]
    assert not missing, f"{missing} not in {err!r}"
    assert snapshot(data_dir) == before


@pytest.mark.parametrize(("task", "mutate", "named", "needles"), _BAD, ids=_BAD_IDS)
def test_bad_input_is_rejected(
    tmp_path: Path, capsys, task: str, mutate: Mutation, named: str, needles: list[str]
) -> None:
    questions, outputs = real_split(task)
    mutate(questions, outputs)
    write_split(tmp_path / task, "dev", questions, outputs)
    with pytest.raises(LaMPDataError):
        load_split(tmp_path, task, "dev")
    assert_rejected(capsys, task, tmp_path, [str(tmp_path / task / f"dev_{named}.json"), *needles])


@pytest.mark.parametrize("named", ["questions", "outputs"])
@pytest.mark.parametrize("style", ["one-line", "indented", "json-lines"])
def test_malformed_json_is_rejected(tmp_path: Path, capsys, named: str, style: str) -> None:
    """The message names the file and the line the JSON breaks on."""
    questions, outputs = real_split("LaMP_4")
    documents = {"questions": questions, "outputs": outputs}
    if style == "json-lines":
        records = documents[named] if named == "questions" else [outputs]
        text = "\n".join(json.dumps(r) for r in [*records, *records])  # the break is on line 2
        at = text.index("\n") + 1
        text = text[:at] + text[at + 1 :]  # drop the opening brace of line 2
        needles = ["malformed JSON on line 2"]
    else:
        text = json.dumps(documents[named], indent=1 if style == "indented" else None)
        at = text.index('"id"', text.index('"id"') + 1)  # the second record's id loses its quotes
        text = text[:at] + "id" + text[at + 4 :]
        needles = [f"line {text[:at].count(chr(10)) + 1} column"]
    documents[named] = text
    write_split(tmp_path / "LaMP_4", "dev", documents["questions"], documents["outputs"])
    assert_rejected(capsys, "LaMP_4", tmp_path, [str(tmp_path / "LaMP_4" / f"dev_{named}.json"), *needles])


def test_unknown_task_is_rejected(data_root: Path, capsys) -> None:
    assert_rejected(capsys, "LaMP_9", data_root, ["unknown task 'LaMP_9'", "LaMP_4"])
    with pytest.raises(ValueError, match="unknown task"):
        check_data("LaMP_9", data_root)


def test_missing_folder_is_rejected(tmp_path: Path, capsys) -> None:
    assert_rejected(capsys, "LaMP_4", tmp_path, ["no train_questions.json", str(tmp_path)])
    assert available_splits(tmp_path, "LaMP_4") == []


# --------------------------------------------------------------------------------------------
# The synthetic generator.


@pytest.mark.parametrize("time_based", [False, True])
def test_synthetic_is_deterministic(tmp_path: Path, time_based: bool) -> None:
    def files(name: str, seed: int) -> dict[str, bytes]:
        write_synthetic(tmp_path / name, task="LaMP_2", users=8, profile_size=(2, 5), time_based=time_based, seed=seed)
        return snapshot(tmp_path / name)

    first = files("a", 7)
    assert len(first) == 6
    assert files("b", 7) == first
    other_seed = files("c", 8)
    assert other_seed.keys() == first.keys() and other_seed != first
    mtimes = {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.json")}
    files("a", 7)  # identical arguments leave existing files alone
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "a").rglob("*.json")} == mtimes


@pytest.mark.parametrize("task", task_names())
def test_synthetic_data_loads(data_root: Path, task: str) -> None:
    assert available_splits(data_root, task) == list(SPLITS)
    for split in SPLITS:
        questions = load_split(data_root, task, split)
        assert questions and all(q.output is not None for q in questions)
        assert all(get_task(task).query(q.input) for q in questions)


_LABEL_TASKS = [
    t for t in task_names() if get_task(t).metric_kind == "classification" and len(get_task(t).labels or ()) > 2
]


@pytest.mark.parametrize("task", _LABEL_TASKS)
def test_synthetic_plants_a_personal_signal(task: str) -> None:
    """The gold label is among the user's profile labels, and the user's majority label beats chance."""
    entry = get_task(task)
    pairs = []  # (gold, profile labels) of every question
    for questions, outputs in generate(SyntheticSpec(task=task, users=60)).values():
        golds = {g["id"]: g["output"] for g in outputs["golds"]}
        pairs += [(golds[q["id"]], [item[entry.output_field] for item in q["profile"]]) for q in questions]
    in_profile = sum(gold in labels for gold, labels in pairs) / len(pairs)
    majority = sum(Counter(labels).most_common(1)[0][0] == gold for gold, labels in pairs) / len(pairs)
    assert in_profile >= 0.8
    assert majority >= 3 / len(entry.labels)


def test_synthetic_time_based_profiles_grow() -> None:
    """A user's consecutive questions share most of their profile: each extends the one before."""
    splits = generate(SyntheticSpec(task="LaMP_4", users=6, questions_per_user=2, time_based=True))
    by_user: dict[str, list[list[dict]]] = defaultdict(list)
    for split in SPLITS:  # time order: train, then dev, then test
        for record in splits[split][0]:
            by_user[record["user_id"]].append(record["profile"])
    assert len(by_user) == 6
    for profiles in by_user.values():
        assert len(profiles) == 6
        for before, after in zip(profiles, profiles[1:]):
            assert after[: len(before)] == before
            assert len(before) < len(after) <= 2 * len(before)


def test_synthetic_text_lengths_in_a_range_vary_within_it() -> None:
    """`text_words` as (min, max) draws each main text's length; a count gives every text that count."""

    def lengths(words: int | tuple[int, int]) -> set[int]:
        splits = generate(SyntheticSpec(task="LaMP_2", users=10, text_words=words))
        entry = get_task("LaMP_2")
        texts = [
            item[entry.input_field] for questions, _ in splits.values() for q in questions for item in q["profile"]
        ]
        return {len(text.split()) for text in texts}

    assert lengths(12) == {12}
    varied = lengths((5, 40))
    assert min(varied) >= 5 and max(varied) <= 40 and len(varied) > 10
    for bad in (0, (40, 5)):
        with pytest.raises(ConfigError, match="synthetic.text_words"):
            SyntheticSpec(text_words=bad)


def test_synthetic_once_skips_unchanged_files_and_rewrites_changed_ones(tmp_path: Path) -> None:
    """The stamp spares regenerating data whose files are unchanged since they were written (same
    size and time); a file changed since is generated again, and another spec is written anew."""
    from lamp_pl.data.synthetic import write_synthetic_once

    spec, stamps = SyntheticSpec(task="LaMP_2", users=6, profile_size=(2, 4)), tmp_path / "stamps"
    folder = write_synthetic_once(tmp_path / "data", spec, stamps)
    written = snapshot(folder)
    assert len(written) == 6 and len(list(stamps.iterdir())) == 1
    dev = folder / "dev_outputs.json"
    state = dev.stat()
    # Same size and time as recorded: taken as unchanged, so left alone (nothing generated).
    dev.write_text(dev.read_text().replace('"', "'"))
    os.utime(dev, ns=(state.st_atime_ns, state.st_mtime_ns))
    write_synthetic_once(tmp_path / "data", spec, stamps)
    assert "'" in dev.read_text()
    # A changed time: checked against a fresh generation, and rewritten.
    os.utime(dev, ns=(state.st_atime_ns, state.st_mtime_ns + 10**9))
    write_synthetic_once(tmp_path / "data", spec, stamps)
    assert snapshot(folder) == written
    other = dataclasses.replace(spec, seed=1)
    write_synthetic_once(tmp_path / "data", other, stamps)
    assert snapshot(folder) != written and len(list(stamps.iterdir())) == 2
    dev.unlink()  # a missing file is written again
    write_synthetic_once(tmp_path / "data", other, stamps)
    assert dev.is_file()
