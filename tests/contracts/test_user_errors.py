"""Every command on every kind of bad input: exit status 2, at most 3 lines on stderr naming the
offending path or name, and no traceback (the error boundary of `lamp_pl.errors`).

The table runs in-process through `lamp_pl.cli.main` (the console script's function), so the whole
file costs one import of Lightning and transformers; one case per boundary also runs as a real
`lamp-pl` process (`test_the_console_script_says_the_same`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import resource
import shutil
import subprocess
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
import torch
import yaml

from helpers import CONF
from lamp_pl.adapters.store import adapter_path
from lamp_pl.cli import main

ROOT = Path(__file__).resolve().parents[2]
TASK = "LaMP_3"
LATIN1 = "caf\xe9 cr\xe8me, na\xefve".encode("latin-1")


@dataclass
class Ctx:
    """The folders and files the cases point at (built once per module)."""

    tmp: Path
    data: Path
    t5: Path
    bert: Path
    pickled: Path
    empty: Path

    def copy_data(self, name: str) -> Path:
        """A private copy of the synthetic LaMP-3 data to damage."""
        root = self.tmp / name
        if not root.exists():
            shutil.copytree(self.data / TASK, root / TASK)
        return root

    def data_args(self, data: Path | None = None, cache: str = "cache", **extra: str) -> list[str]:
        args = [
            "--config",
            str(CONF),
            "--data.task",
            TASK,
            "--data.data_dir",
            str(data or self.data),
            "--data.cache_dir",
            str(self.tmp / cache),
            "--data.tokenizer",
            str(self.t5),
        ]
        for key, value in extra.items():
            args += [f"--data.{key}", value]
        return args

    def lightning(self, *, model: str | Path | None = None, run: str = "runs", **extra: str) -> list[str]:
        return [
            *self.data_args(**extra),
            "--model.model_name_or_path",
            str(model or self.t5),
            "--trainer.default_root_dir",
            str(self.tmp / run),
        ]

    def config_file(self, name: str = "adapters.yaml", **model: str) -> Path:
        """A LightningCLI config for the adapter commands (one file: data and model sections)."""
        config = yaml.safe_load(CONF.read_text())
        config["data"].update(
            task=TASK, data_dir=str(self.data), cache_dir=str(self.tmp / "cache"), tokenizer=str(self.t5), k=0
        )
        config["data"]["retrieval"] = {"retriever": "none"}
        config["model"].update({"model_name_or_path": str(self.t5), **model})
        path = self.tmp / name
        path.write_text(yaml.safe_dump(config))
        return path


@pytest.fixture(scope="module")
def ctx(tmp_path_factory, data_root, tiny_t5, tiny_bert) -> Ctx:
    tmp = tmp_path_factory.mktemp("user_errors")
    pickled = tmp / "pickled.ckpt"
    torch.save({"state_dict": {}, "hyper_parameters": {}, "payload": argparse.Namespace(run="code")}, pickled)
    (tmp / "empty_model").mkdir()
    return Ctx(tmp, data_root, tiny_t5, tiny_bert, pickled, tmp / "empty_model")


def _latin1(path: Path) -> Path:
    path.write_bytes(b'[{"id": "' + LATIN1 + b'"}]')
    return path


def _bad_questions(ctx: Ctx, name: str, content: bytes) -> tuple[Path, Path]:
    root = ctx.copy_data(name)
    path = root / TASK / "train_questions.json"
    path.write_bytes(content)
    return root, path


def _two_candidates(ctx: Ctx) -> tuple[list[str], list[str]]:
    root = ctx.copy_data("two")
    path = root / TASK / "dev_questions.json"
    shutil.copyfile(path, path.with_suffix(".jsonl"))
    return ["index", *ctx.data_args(root, cache="cache-two")], [str(path), str(path.with_suffix(".jsonl"))]


def _duplicate_item(ctx: Ctx) -> tuple[list[str], list[str]]:
    root = ctx.copy_data("duplicate")
    path = root / TASK / "train_questions.json"
    questions = json.loads(path.read_text())
    profile = questions[0]["profile"]
    profile.append({**profile[0], "text": profile[0]["text"] + " (edited)"})
    path.write_text(json.dumps(questions))
    return ["index", *ctx.data_args(root, cache="cache-dup")], [str(path), "share the id"]


def _outputs_before_encoding(ctx: Ctx) -> tuple[list[str], list[str]]:
    root = ctx.copy_data("outputs")
    path = root / TASK / "dev_outputs.json"
    document = json.loads(path.read_text())
    document["golds"][0]["output"] = "11"
    path.write_text(json.dumps(document))
    dense = {"retrieval.retriever": "contriever", "retrieval.encoder": str(ctx.bert)}
    return ["index", *ctx.data_args(root, cache="cache-outputs", **dense)], [str(path)]


def _csv(ctx: Ctx, name: str, content: bytes | None) -> tuple[list[str], list[str]]:
    path = ctx.tmp / name
    if content is not None:
        path.write_bytes(content)
    return ["convert", "goemotions", "--raw", str(path), "--out", str(ctx.tmp / "converted")], [str(path)]


def _predictions(ctx: Ctx, name: str, content: bytes) -> tuple[list[str], list[str]]:
    path = ctx.tmp / name
    path.write_bytes(content)
    golds = ctx.data / TASK / "dev_outputs.json"
    return ["evaluate", "--task", TASK, "--golds", str(golds), "--preds", str(path)], [str(path)]


def _adapters(ctx: Ctx, *args: str) -> list[str]:
    return ["--config", str(ctx.config_file()), *args]


Case = Callable[[Ctx], tuple[list[str], list[str]]]
NO_TASK = json.dumps({"golds": [{"id": "x", "output": "1"}]}).encode()
PICKLED = "holds pickled objects; lamp_pl loads weights only and will not run them"
DENSE_MISSING = {"retrieval.retriever": "contriever", "retrieval.encoder": "/nowhere/encoder"}
DENSE_HUB = {"retrieval.retriever": "contriever", "retrieval.encoder": "nobody/no-such-encoder"}

CASES: dict[str, Case] = {
    # missing, empty and non-UTF-8 files
    "index: missing data folder": lambda c: (
        ["index", *c.data_args(c.tmp / "no_data")],
        [str(c.tmp / "no_data")],
    ),
    "index: non-UTF-8 questions": lambda c: (
        ["index", *c.data_args(_bad_questions(c, "latin1", LATIN1)[0], cache="cache-l1")],
        [str(c.tmp / "latin1" / TASK / "train_questions.json")],
    ),
    "index: empty questions file": lambda c: (
        ["index", *c.data_args(_bad_questions(c, "empty", b"")[0], cache="cache-empty")],
        [str(c.tmp / "empty" / TASK / "train_questions.json")],
    ),
    "check-data: non-UTF-8 questions": lambda c: (
        ["check-data", "--task", TASK, "--data-dir", str(_bad_questions(c, "latin1b", LATIN1)[0])],
        [str(c.tmp / "latin1b" / TASK / "train_questions.json")],
    ),
    "fit: non-UTF-8 questions": lambda c: (
        ["fit", *c.lightning(data_dir=str(_bad_questions(c, "latin1c", LATIN1)[0]))],
        [str(c.tmp / "latin1c" / TASK / "train_questions.json")],
    ),
    "index: .json and .jsonl for one split": _two_candidates,
    "index: duplicate item id, other content": _duplicate_item,
    "index: bad outputs stop a dense build first": _outputs_before_encoding,
    "evaluate: non-UTF-8 predictions": lambda c: _predictions(c, "preds-latin1.json", LATIN1),
    "evaluate: predictions without task": lambda c: _predictions(c, "preds-notask.json", NO_TASK),
    "evaluate: missing golds": lambda c: (
        ["evaluate", "--task", TASK, "--golds", str(c.tmp / "no-golds.json"), "--preds", str(c.pickled)],
        [str(c.tmp / "no-golds.json")],
    ),
    "convert: missing CSV": lambda c: _csv(c, "missing.csv", None),
    "convert: Latin-1 CSV": lambda c: _csv(c, "latin1.csv", b"id,text\n1," + LATIN1 + b"\n"),
    "convert: header-only CSV": lambda c: _csv(
        c, "header.csv", b"id,text,example_very_unclear,rater_id,admiration,amusement\n"
    ),
    "convert: empty CSV": lambda c: _csv(c, "empty.csv", b""),
    "grid: non-UTF-8 config": lambda c: (
        ["grid", "--config", str(_latin1(c.tmp / "grid.yaml")), "--k", "0", "--out", str(c.tmp / "grid")],
        [str(c.tmp / "grid.yaml")],
    ),
    "fit-users: missing config": lambda c: (
        ["fit-users", "--config", str(c.tmp / "no.yaml"), "--out", str(c.tmp / "a")],
        [str(c.tmp / "no.yaml")],
    ),
    "ropg-kd: missing recipe": lambda c: (["ropg-kd", str(c.tmp / "no-recipe.yml")], [str(c.tmp / "no-recipe.yml")]),
    "fit-retriever: missing utilities": lambda c: (
        [
            "fit-retriever",
            "--train_utilities",
            str(c.tmp / "u.jsonl"),
            "--encoder",
            str(c.bert),
            "--out_dir",
            str(c.tmp / "r"),
        ],
        [str(c.tmp / "u.jsonl")],
    ),
    "synthetic: destination is a file": lambda c: (
        ["synthetic", "--dest", str(c.pickled), "--task", TASK, "--users", "2"],
        [str(c.pickled)],
    ),
    "download: server unreachable": lambda c: (
        ["download", "--task", "LaMP_1", "--split", '["dev"]', "--dest", str(c.tmp / "dl")]
        + ["--base_url", "http://127.0.0.1:9", "--retries", "0", "--timeout", "2", "--progress", "false"],
        ["127.0.0.1:9"],
    ),
    # missing folders
    "fit: missing model folder": lambda c: (["fit", *c.lightning(model=c.tmp / "no_model")], [str(c.tmp / "no_model")]),
    "index: missing encoder folder": lambda c: (["index", *c.data_args(**DENSE_MISSING)], ["/nowhere/encoder"]),
    "test-users: missing adapters folder": lambda c: (
        ["test-users", *_adapters(c, "--user_adapters", str(c.tmp / "no_adapters"))],
        [str(c.tmp / "no_adapters")],
    ),
    "fit-retriever: missing encoder": lambda c: (
        [
            "fit-retriever",
            "--train_utilities",
            str(c.pickled),
            "--encoder",
            str(c.tmp / "no_enc"),
            "--out_dir",
            str(c.tmp),
        ],
        [str(c.tmp / "no_enc")],
    ),
    # empty model folders
    "fit: empty model folder": lambda c: (["fit", *c.lightning(model=c.empty)], [str(c.empty)]),
    "inspect: empty tokenizer folder": lambda c: (
        ["inspect", *c.data_args(), "--data.tokenizer", str(c.empty), "--id", "x"],
        [str(c.empty)],
    ),
    "fit-users: empty model folder": lambda c: (
        ["fit-users", "--config", str(c.config_file("empty.yaml", model_name_or_path=str(c.empty)))]
        + ["--out", str(c.tmp / "a-empty")],
        [str(c.empty)],
    ),
    # unknown hub names, offline
    "fit: unknown hub model offline": lambda c: (
        ["fit", *c.lightning(model="nobody/no-such-model")],
        ["nobody/no-such-model", "HF_HUB_OFFLINE"],
    ),
    "index: unknown hub encoder offline": lambda c: (
        ["index", *c.data_args(**DENSE_HUB)],
        ["nobody/no-such-encoder", "HF_HUB_OFFLINE"],
    ),
    "validate: unknown hub tokenizer offline": lambda c: (
        ["validate", *c.lightning(), "--data.tokenizer", "nobody/no-such-tokenizer"],
        ["nobody/no-such-tokenizer"],
    ),
    # checkpoints: pickled objects, or none yet
    "test: pickled checkpoint": lambda c: (
        ["test", *c.lightning(), "--ckpt_path", str(c.pickled)],
        [str(c.pickled), PICKLED],
    ),
    "fit: resume from a pickled checkpoint": lambda c: (
        ["fit", *c.lightning(), "--ckpt_path", str(c.pickled)],
        [str(c.pickled), PICKLED],
    ),
    "predict: --ckpt_path best over a pickled last.ckpt": lambda c: (
        ["predict", *c.lightning(run="runs-pickled"), "--ckpt_path", "best"],
        [PICKLED, "last.ckpt"],
    ),
    "validate: --ckpt_path last before any fit": lambda c: (
        ["validate", *c.lightning(run="runs-none"), "--ckpt_path", "last"],
        [str(c.tmp / "runs-none"), "last.ckpt"],
    ),
    "export: pickled checkpoint": lambda c: (
        ["export", "--ckpt_path", str(c.pickled), "--out", str(c.tmp / "exported")],
        [str(c.pickled), PICKLED],
    ),
    "export: missing checkpoint": lambda c: (
        ["export", "--ckpt_path", str(c.tmp / "no.ckpt"), "--out", str(c.tmp / "exported")],
        [str(c.tmp / "no.ckpt")],
    ),
    "fit-users: pickled checkpoint": lambda c: (
        ["fit-users", *_adapters(c, "--ckpt_path", str(c.pickled), "--out", str(c.tmp / "a-pickled"))],
        [str(c.pickled), PICKLED],
    ),
    "test-users: pickled checkpoint": lambda c: (
        ["test-users", *_adapters(c, "--ckpt_path", str(c.pickled), "--user_adapters", str(c.tmp / "a-pickled"))],
        [str(c.pickled), PICKLED],
    ),
    "score-items: pickled checkpoint": lambda c: (
        ["score-items", *c.data_args(), "--ckpt_path", str(c.pickled), "--candidates", "1"],
        [str(c.pickled), PICKLED],
    ),
    "attribute: pickled checkpoint": lambda c: (
        ["attribute", *c.data_args(), "--ckpt_path", str(c.pickled)],
        [str(c.pickled), PICKLED],
    ),
}


def run(capsys, argv: list[str]) -> tuple[int | str | None, str, str]:
    """`lamp-pl ARGV` in-process: its exit status, its stderr and its stdout."""
    capsys.readouterr()
    try:
        code = main(argv)
    except SystemExit as exit_:
        code = exit_.code
    captured = capsys.readouterr()
    return code, captured.err, captured.out


def assert_one_user_error(code, err: str, needles: list[str]) -> None:
    lines = [line for line in err.splitlines() if line.strip()]
    assert code == 2, err[-3000:]
    assert "Traceback" not in err and 1 <= len(lines) <= 3, err[-3000:]
    error = next(line for line in lines if " error: " in line)
    assert error.startswith("lamp-pl "), err
    for needle in needles:
        assert needle in error, (needle, err)
    assert "weights_only=False" not in err and "will likely succeed" not in err


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.delenv("LAMP_PL_VERBOSE", raising=False)


@pytest.mark.parametrize("case", CASES)
def test_bad_input_is_one_line_with_exit_status_2(case, ctx, capsys):
    if "best over a pickled" in case:  # a run folder whose last.ckpt holds a pickled object
        folder = ctx.tmp / "runs-pickled" / "lightning_logs" / "version_0" / "checkpoints"
        folder.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(ctx.pickled, folder / "last.ckpt")
    argv, needles = CASES[case](ctx)
    code, err, _ = run(capsys, argv)
    assert_one_user_error(code, err, needles)
    if case == "index: bad outputs stop a dense build first":
        assert not list((ctx.tmp / "cache-outputs").rglob("*.npy")), "nothing is encoded before validation"


# ---------------------------------------------------------------------------------------------
# Refusals of exactly one line: grid axes (nothing built first), config files, learned methods


BAD_YAML = b"data:\n  k: 1\n  task: [unclosed\n"
NOT_TEXT = bytes(range(256)) * 4


def _file(ctx: Ctx, name: str, content: bytes) -> Path:
    path = ctx.tmp / name
    path.write_bytes(content)
    return path


def _grid(ctx: Ctx, *more: str) -> list[str]:
    """`lamp-pl grid` over the tiny settings; its caches and tables would go to `grid-refused`."""
    return ["grid", *ctx.lightning(cache="cache-grid"), "--out", str(ctx.tmp / "grid-refused"), *more]


def _fit_with(ctx: Ctx, command: str, name: str, content: bytes) -> tuple[list[str], list[str]]:
    path = _file(ctx, name, content)
    return [command, *ctx.lightning(), "--config", str(path)], [str(path)]


def _truncated_arrow(ctx: Ctx) -> tuple[list[str], list[str]]:
    from lamp_pl.demo.longform import write_longlamp

    root = ctx.tmp / "longlamp-truncated"
    write_longlamp(root, "abstract_generation_user", users=6, profile_size=3, words=8)
    split = root / "abstract_generation_user" / "train"
    arrow = next(split.glob("*.arrow"))
    arrow.write_bytes(arrow.read_bytes()[: arrow.stat().st_size // 2])
    args = ["--config", str(CONF), "--data.task", "LongLaMP_abstract_generation_user", "--data.source.dataset"]
    args += [str(root), "--data.cache_dir", str(ctx.tmp / "cache-ll"), "--data.tokenizer", str(ctx.t5)]
    return ["index", *args], [str(split), "split 'train'"]


def _selector(ctx: Ctx) -> tuple[list[str], list[str]]:
    path = _file(ctx, "random.ckpt", NOT_TEXT)
    out = ["--pool", '{"bm25": {}}', "--out", str(ctx.tmp / "choices.json")]
    return ["select", *ctx.data_args(), "--selector", str(path), *out], [str(path), "not a readable PyTorch checkpoint"]


def _fit_selector(ctx: Ctx, name: str, content: bytes, needle: str) -> tuple[list[str], list[str]]:
    path = _file(ctx, name, content)
    args = ["fit-selector", "--train", str(path), "--encoder", str(ctx.bert), "--out_dir", str(ctx.tmp / "sel")]
    return args, [str(path), needle]


REFUSALS: dict[str, Case] = {
    "grid: unknown retriever": lambda c: (_grid(c, "--retriever", "bm25", "bogus_ret"), ["--retriever bogus_ret"]),
    "grid: negative k": lambda c: (_grid(c, "--k", "-2"), ["--k -2"]),
    "grid: k not a number": lambda c: (_grid(c, "--k", "1", "abc"), ["--k abc"]),
    "grid: unknown ablation": lambda c: (_grid(c, "--ablation", "nope"), ["--ablation nope"]),
    "grid: unknown task": lambda c: (_grid(c, "--task", "LaMP_99"), ["--task LaMP_99", "unknown task"]),
    "grid: missing task folder": lambda c: (_grid(c, "--task", "LaMP_2=/nonexistent"), ["/nonexistent"]),
    "grid: baseline not in the grid": lambda c: (
        _grid(c, "--retriever", "bm25", "random", "--baseline", "retriever=nope"),
        ["--baseline retriever=nope"],
    ),
    "grid: YAML syntax error": lambda c: (
        _grid(c, "--k", "0", "--config", str(_file(c, "grid-bad.yaml", BAD_YAML))),
        [str(c.tmp / "grid-bad.yaml"), "not valid YAML", "line"],
    ),
    "fit: YAML syntax error": lambda c: _fit_with(c, "fit", "bad.yaml", BAD_YAML),
    "fit: unknown key": lambda c: _fit_with(c, "fit", "key.yaml", b"data:\n  nokey: 1\n"),
    "fit: wrong type": lambda c: _fit_with(c, "fit", "type.yaml", b"data:\n  k: abc\n"),
    "fit: unknown section": lambda c: _fit_with(c, "fit", "section.yaml", b"bogus_section:\n  x: 1\n"),
    "fit: garbage config": lambda c: _fit_with(c, "fit", "garbage.yaml", NOT_TEXT),
    "test: missing config": lambda c: (["test", *c.lightning(), "--config", str(c.tmp / "no.yaml")], ["no.yaml"]),
    "fit-users: YAML syntax error": lambda c: (
        ["fit-users", *_adapters(c, "--config", str(_file(c, "users-bad.yaml", BAD_YAML)), "--out", str(c.tmp))],
        [str(c.tmp / "users-bad.yaml"), "not valid YAML"],
    ),
    "index: YAML syntax error in the second config": lambda c: (
        ["index", *c.data_args(), "--config", str(_file(c, "second-bad.yaml", BAD_YAML))],
        [str(c.tmp / "second-bad.yaml"), "not valid YAML"],
    ),
    "fit: unknown served api": lambda c: (
        ["fit", *c.lightning(), "--model.served.api", "bogus"],
        ["model.served", "api", "bogus"],
    ),
    "fit: unknown served field": lambda c: (
        ["fit", *c.lightning(), "--model.served.bogus_field", "3"],
        ["bogus_field"],
    ),
    "fit-selector: malformed JSONL": lambda c: _fit_selector(c, "bad.jsonl", b'{"utilities": \n', "line 1"),
    "fit-selector: binary utilities": lambda c: _fit_selector(c, "binary.jsonl", NOT_TEXT, "UTF-8"),
    "select: random bytes as selector": _selector,
    "index: truncated Arrow split": _truncated_arrow,
    "fit-users: missing tokenizer folder": lambda c: (
        ["fit-users", *_adapters(c, "--data.tokenizer", "/missing/folder", "--out", str(c.tmp / "a-tok"))],
        ["/missing/folder", "no such tokenizer folder"],
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_refusal_is_one_line_and_builds_nothing(case, ctx, capsys):
    argv, needles = REFUSALS[case](ctx)
    code, err, _ = run(capsys, argv)
    assert_one_user_error(code, err, needles)
    assert len(err.strip().splitlines()) == 1, err
    if case.startswith("grid:"):  # refused before a cache is built or the grid's folder made
        assert not (ctx.tmp / "cache-grid").exists() and not (ctx.tmp / "grid-refused").exists()


def test_truncated_task_adapter_is_named(ctx, capsys):
    task = ctx.tmp / "task-adapter"
    code, err, _ = run(capsys, ["fit-task-adapter", *_adapters(ctx, "--out", str(task), "--epochs", "1")])
    assert code in (0, None), err[-3000:]
    adapter = next(task.glob("*.safetensors"))
    adapter.write_bytes(adapter.read_bytes()[:-64])
    fit = ["fit-users", *_adapters(ctx, "--init_adapter", str(adapter), "--out", str(ctx.tmp / "a-init"))]
    code, err, _ = run(capsys, [*fit, "--shard", "0/20", "--epochs", "1"])
    assert_one_user_error(code, err, [str(adapter), "not a readable task adapter"])


# ---------------------------------------------------------------------------------------------
# Full disk during each cache write (a file-size limit, as tests/contracts/test_faults.py does), in-process


@contextlib.contextmanager
def file_size_limit(size: int):
    """Lower the soft RLIMIT_FSIZE (Python ignores SIGXFSZ, so a write past it is EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    resource.setrlimit(resource.RLIMIT_FSIZE, (size, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))


@pytest.mark.parametrize(
    ("cache", "change", "needle"),
    [
        ("retrieval results", {"retrieval.k_max": "3"}, "results"),
        ("tokenized prompts (Arrow)", {"max_input_length": "80"}, "prompts"),
    ],
)
def test_full_disk_while_writing_a_cache_names_it(cache, change, needle, ctx, capsys):
    args = ctx.data_args(cache=f"cache-full-{needle}")
    code, err, _ = run(capsys, ["index", *args])
    assert code in (0, None), err
    with file_size_limit(600):
        code, err, _ = run(capsys, ["index", *args, *[a for k, v in change.items() for a in (f"--data.{k}", v)]])
    assert_one_user_error(code, err, ["No space left", str(ctx.tmp / f"cache-full-{needle}"), needle])


# ---------------------------------------------------------------------------------------------
# Per-user adapters: checksummed, a damaged one named by test-users and retrained by fit-users


def test_damaged_adapter_is_named_then_retrained(ctx, capsys, caplog):
    out = ctx.tmp / "adapters"
    fit = ["fit-users", *_adapters(ctx, "--out", str(out), "--shard", "0/10", "--epochs", "1", "--min_profile", "2")]
    code, err, _ = run(capsys, fit)
    assert code == 0, err
    files = sorted(out.glob("*.safetensors"))
    assert files and all(f.with_name(f.name + ".json").is_file() for f in files)
    damaged = files[0]
    damaged.write_bytes(damaged.read_bytes()[:-16])
    code, err, _ = run(capsys, ["test-users", *_adapters(ctx, "--user_adapters", str(out))])
    assert_one_user_error(code, err, [str(damaged), "fit-users"])
    code, err, out_text = run(capsys, fit)
    assert code == 0, err
    summary = json.loads(out_text[out_text.index("{") :])
    assert summary["trained"] == 1 and summary["skipped_finished"] == len(files) - 1, summary
    assert any("damaged" in r.getMessage() and damaged.name in r.getMessage() for r in caplog.records)
    code, err, _ = run(capsys, ["test-users", *_adapters(ctx, "--user_adapters", str(out))])
    assert code == 0, err


def test_full_disk_while_writing_an_adapter_names_it(ctx, capsys):
    out = ctx.tmp / "adapters-full"
    fit = ["fit-users", *_adapters(ctx, "--out", str(out), "--shard", "0/20", "--epochs", "1", "--min_profile", "2")]
    with file_size_limit(4096):
        code, err, _ = run(capsys, fit)
    assert_one_user_error(code, err, ["No space left", str(out)])
    assert not list(out.glob("*.safetensors"))


def test_adapter_files_are_never_hidden(tmp_path):
    for user in (".hidden", "..", ".", "./x", "...a"):
        assert not adapter_path(tmp_path, user).name.startswith(".")


# ---------------------------------------------------------------------------------------------
# The real console script: exit status and stderr as the shell sees them


def test_the_console_script_says_the_same(ctx):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1", "PYTHONDONTWRITEBYTECODE": "1"}
    env.pop("LAMP_PL_VERBOSE", None)
    script = "import sys; from lamp_pl.cli import main; sys.exit(main())"
    preds = ctx.tmp / "preds-console.json"
    preds.write_bytes(LATIN1)
    argv = ["evaluate", "--task", TASK, "--golds", str(ctx.data / TASK / "dev_outputs.json"), "--preds", str(preds)]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert_one_user_error(done.returncode, done.stderr, [str(preds), "UTF-8"])
    done = subprocess.run(
        [sys.executable, "-c", script, *argv, "--verbose"],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        check=False,
    )
    assert done.returncode == 2 and "Traceback" in done.stderr, done.stderr[-2000:]


def test_missing_last_ckpt_is_refused_before_lightning_starts(ctx):
    """No seed or device lines before the refusal: the checkpoint is checked before the trainer."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HF_HUB_OFFLINE": "1"}
    env.pop("LAMP_PL_VERBOSE", None)
    script = "import sys; from lamp_pl.cli import main; sys.exit(main())"
    argv = ["test", *ctx.lightning(run="runs-never-fit"), "--ckpt_path", "last"]
    done = subprocess.run(
        [sys.executable, "-c", script, *argv], capture_output=True, text=True, env=env, timeout=300, check=False
    )
    assert_one_user_error(done.returncode, done.stderr, [str(ctx.tmp / "runs-never-fit"), "last.ckpt"])
    assert len(done.stderr.strip().splitlines()) == 1 and not done.stdout.strip(), done.stdout + done.stderr


def test_last_ckpt_is_written_with_a_user_model_checkpoint_too(ctx, capsys):
    """The rule of the README: `last.ckpt` at every epoch end, with or without a user callback."""
    mine = ctx.tmp / "my-checkpoints"
    config = ctx.tmp / "user-callback.yaml"
    callback = {"class_path": "lightning.pytorch.callbacks.ModelCheckpoint", "init_args": {"dirpath": str(mine)}}
    config.write_text(yaml.safe_dump({"trainer": {"callbacks": [callback], "limit_val_batches": 0}}))
    code, err, _ = run(capsys, ["fit", *ctx.lightning(run="runs-user-callback"), "--config", str(config)])
    assert code in (0, None), err[-3000:]
    assert list((ctx.tmp / "runs-user-callback").rglob("last.ckpt")), "lamp_pl's last.ckpt"
    assert list(mine.glob("*.ckpt")), "the user's ModelCheckpoint is honoured as it is"
    code, err, _ = run(capsys, ["validate", *ctx.lightning(run="runs-user-callback"), "--ckpt_path", "last"])
    assert code in (0, None), err[-3000:]
