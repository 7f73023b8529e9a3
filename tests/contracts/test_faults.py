"""Fault injection: bad values, missing splits, damaged caches, concurrency, read-only and full
disks, and a remote file that changes during a resumed download.

Every fault must end in one clear line naming what is wrong, or in a recovery whose result equals
a clean build. Caches are built with the tiny encoder and tokenizer of conftest on small data.
"""

from __future__ import annotations

import builtins
import hashlib
import json
import logging
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import numpy as np
import pytest
import yaml

from lamp_pl.cli import main
from lamp_pl.data.check import check_data
from lamp_pl.data.lamp import LaMPDataError, load_split
from lamp_pl.data.stages import check_splits_present
from lamp_pl.data.stream import load_questions
from lamp_pl.errors import LaMPError, MissingDataError
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.retrieval import RetrievalConfig, load_retrieved
from lamp_pl.retrieval.build import index_folder

TASK = "LaMP_7"
ROOT = Path(__file__).parents[2]

# ---------------------------------------------------------------------------------------------
# 1. Values, not only shapes


def _rating_data(root: Path) -> Path:
    """A valid two-split LaMP-3 folder, small enough to edit by hand."""
    folder = root / "LaMP_3"
    folder.mkdir(parents=True)
    for split in ("train", "dev"):
        questions = [
            {
                "id": f"{split}{i}",
                "input": f"Score it. review: nice thing {i}",
                "profile": [{"id": f"{split}{i}-{j}", "text": f"fine item {j}", "score": str(1 + j)} for j in range(3)],
            }
            for i in range(3)
        ]
        (folder / f"{split}_questions.json").write_text(json.dumps(questions))
        golds = [{"id": f"{split}{i}", "output": str(2 + i)} for i in range(3)]
        (folder / f"{split}_outputs.json").write_text(json.dumps({"task": "LaMP_3", "golds": golds}))
    return root


def _edit(path: Path, change) -> None:
    document = json.loads(path.read_text())
    change(document)
    path.write_text(json.dumps(document))


def _set_profile(field, value):
    def change(questions):
        questions[1]["profile"][2][field] = value

    return change


def _set_gold(value):
    def change(outputs):
        outputs["golds"][1]["output"] = value

    return change


PROFILE = ["train_questions.json", "record 1 (id 'train1')"]
GOLD = ["train_outputs.json", "record 1 (id 'train1')", "field 'output'"]
BAD_VALUES = {
    "text null": ("train_questions", _set_profile("text", None), PROFILE + ["profile[2].text", "got null"]),
    "text list": ("train_questions", _set_profile("text", ["a"]), PROFILE + ["profile[2].text", "got list"]),
    "text NaN": ("train_questions", _set_profile("text", math.nan), PROFILE + ["profile[2].text", "got nan"]),
    **{
        f"profile score {v!r}": ("train_questions", _set_profile("score", v), PROFILE + ["profile[2].score"])
        for v in (7, 0, -3, 2.5, "nan", "inf", "2.5")
    },
    **{f"gold {v!r}": ("train_outputs", _set_gold(v), GOLD) for v in (7, "0", -3, 2.5, "nan", "inf")},
    "golds null": (
        "train_outputs",
        lambda outputs: outputs.update(golds=None),
        ["train_outputs.json", "field 'golds'", "got null"],
    ),
}


@pytest.mark.parametrize("case", BAD_VALUES)
def test_bad_value_is_one_line_naming_file_record_and_field(case, tmp_path):
    root = _rating_data(tmp_path)
    name, change, needles = BAD_VALUES[case]
    _edit(root / "LaMP_3" / f"{name}.json", change)
    with pytest.raises(LaMPDataError) as caught:
        check_data("LaMP_3", root)
    message = str(caught.value)
    assert "\n" not in message and all(n in message for n in needles), message


@pytest.mark.parametrize("encoding,needle", [("utf-16", "UTF-16"), ("latin-1", "not UTF-8")])
def test_wrong_encoding_names_the_file(encoding, needle, tmp_path):
    root = _rating_data(tmp_path)
    path = root / "LaMP_3" / "dev_questions.json"
    path.write_bytes(path.read_text().replace("nice", "naïve").encode(encoding))
    with pytest.raises(LaMPDataError, match=needle) as caught:
        check_data("LaMP_3", root)
    assert str(path) in str(caught.value)


def test_json_lines_with_one_record_loads(tmp_path):
    root = _rating_data(tmp_path)
    path = root / "LaMP_3" / "train_questions.json"
    path.write_text(json.dumps(json.loads(path.read_text())[0]) + "\n")
    _edit(root / "LaMP_3" / "train_outputs.json", lambda d: d.update(golds=d["golds"][:1]))
    assert [q.id for q in load_split(root, "LaMP_3", "train")] == ["train0"]


def test_absurd_nesting_is_a_clear_error_not_recursion(tmp_path):
    root = _rating_data(tmp_path)
    path = root / "LaMP_3" / "dev_questions.json"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(LaMPDataError, match="nested too deeply") as caught:
        check_data("LaMP_3", root)
    assert str(path) in str(caught.value)


STREAMED_FAULTS = {
    "utf-16": (lambda p: p.write_bytes(p.read_text().encode("utf-16")), "UTF-16"),
    "latin-1": (lambda p: p.write_bytes(p.read_text().replace("nice", "naïve").encode("latin-1")), "not UTF-8"),
    "nesting": (lambda p: p.write_text("[" * 100_000 + "]" * 100_000), "nested too deeply"),
    "empty": (lambda p: p.write_text("[]"), "empty"),
    "null text": (lambda p: _edit(p, _set_profile("text", None)), "profile[2].text"),
}


@pytest.mark.parametrize("case", STREAMED_FAULTS)
def test_the_streaming_reader_reports_faults_as_the_whole_file_reader(case, tmp_path):
    """The index build streams questions files (`load_questions`); its errors name the same things."""
    root = _rating_data(tmp_path)
    path = root / "LaMP_3" / "train_questions.json"
    damage, needle = STREAMED_FAULTS[case]
    damage(path)
    for read in (load_split, lambda *a: load_questions(*a, profiles=True)):
        with pytest.raises(LaMPDataError) as caught:
            read(root, "LaMP_3", "train")
        message = str(caught.value)
        assert "\n" not in message and str(path) in message and needle in message, message


def test_the_streaming_reader_loads_json_lines_with_one_record(tmp_path):
    root = _rating_data(tmp_path)
    path = root / "LaMP_3" / "train_questions.json"
    path.write_text(json.dumps(json.loads(path.read_text())[0]) + "\n")
    _edit(root / "LaMP_3" / "train_outputs.json", lambda d: d.update(golds=d["golds"][:1]))
    assert [q.id for q in load_questions(root, "LaMP_3", "train", profiles=True)] == ["train0"]


def test_deep_but_parsable_nesting_in_a_profile_item_is_rejected(tmp_path):
    root = _rating_data(tmp_path)
    deep: object = "x"
    for _ in range(500):
        deep = [deep]
    _edit(root / "LaMP_3" / "dev_questions.json", _set_profile("extra", deep))
    with pytest.raises(LaMPDataError, match=r"record 1 \(id 'dev1'\), field 'profile\[2\]': .*nested"):
        check_data("LaMP_3", root)


def _config(tmp_path: Path, data_dir: Path, tiny_t5: Path, task: str = "LaMP_3", **data) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "data": {
                    "task": task,
                    "data_dir": str(data_dir),
                    "cache_dir": str(tmp_path / "cache"),
                    "tokenizer": str(tiny_t5),
                    "k": 1,
                    "retrieval": {"retriever": "bm25"},
                    "max_input_length": 64,
                    **data,
                }
            }
        )
    )
    return path


def _one_error_line(capsys, command: list[str]) -> str:
    with pytest.raises(SystemExit) as exit_:
        main(command)
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if line.startswith("lamp-pl")]  # not progress bars
    assert exit_.value.code == 2 and len(lines) == 1 and "Traceback" not in err, err
    return lines[0]


def test_check_data_index_and_fit_print_the_same_line(tmp_path, tiny_t5, capsys):
    root = _rating_data(tmp_path / "data")
    _edit(root / "LaMP_3" / "train_questions.json", _set_profile("score", 7))
    config = _config(tmp_path, root, tiny_t5)
    with pytest.raises(SystemExit):
        main(["check-data", "--task", "LaMP_3", "--data-dir", str(root)])
    line = capsys.readouterr().err.strip()
    message = line.split("error: ", 1)[1]
    assert "'7' is outside LaMP_3's scores" in message and "profile[2].score" in message
    assert _one_error_line(capsys, ["index", "--config", str(config)]) == f"lamp-pl index: error: {message}"
    fit = [
        "fit",
        "--config",
        str(ROOT / "tests/conf/tiny.yaml"),
        "--config",
        str(config),
        "--model.model_name_or_path",
        str(tiny_t5),
        "--trainer.default_root_dir",
        str(tmp_path / "runs"),
    ]
    assert _one_error_line(capsys, fit) == f"lamp-pl fit: error: {message}"
    assert not (tmp_path / "cache").exists() or not any((tmp_path / "cache").rglob("*.npz"))


def test_verbose_keeps_the_traceback(tmp_path, tiny_t5, capsys):
    root = _rating_data(tmp_path / "data")
    (root / "LaMP_3" / "train_outputs.json").unlink()
    with pytest.raises(SystemExit):
        main(["index", "--config", str(_config(tmp_path, root, tiny_t5)), "--verbose"])
    err = capsys.readouterr().err
    assert "Traceback" in err and err.strip().splitlines()[-1].startswith("lamp-pl index: error:")


# ---------------------------------------------------------------------------------------------
# 2. Missing pieces caught before work starts

MISSING = {
    "no split files": (lambda f: [p.unlink() for p in f.glob("*.json")], ["no LaMP_3 split files at all"]),
    "no dev split": (lambda f: (f / "dev_questions.json").unlink(), ["dev_questions.json: missing", "fit"]),
    "no train outputs": (
        lambda f: (f / "train_outputs.json").unlink(),
        ["train_outputs.json: missing", "fit needs the gold outputs"],
    ),
    "empty questions": (
        lambda f: [
            (f / "train_questions.json").write_text("[]"),
            _edit(f / "train_outputs.json", lambda d: d.update(golds=[])),
        ],
        ["train_questions.json", "empty"],
    ),
}


@pytest.mark.parametrize("case", MISSING)
def test_missing_piece_stops_index_before_any_cache(case, tmp_path, tiny_t5, capsys):
    root = _rating_data(tmp_path / "data")
    remove, needles = MISSING[case]
    remove(root / "LaMP_3")
    line = _one_error_line(capsys, ["index", "--config", str(_config(tmp_path, root, tiny_t5))])
    assert all(n in line for n in needles), line
    assert "KeyError" not in line and "IndexError" not in line
    assert not list((tmp_path / "cache").rglob("manifest.json")) and not list((tmp_path / "cache").rglob(".complete"))


def test_stage_needs_are_named(tmp_path):
    root = _rating_data(tmp_path)
    (root / "LaMP_3" / "dev_outputs.json").unlink()
    check_splits_present(root, "LaMP_3", {"predict": ["dev"]})  # predicting needs no golds
    with pytest.raises(MissingDataError, match="test needs the gold outputs of the 'dev' split"):
        check_splits_present(root, "LaMP_3", {"test": ["dev"]})
    assert isinstance(MissingDataError("x"), FileNotFoundError | LaMPError)
    assert "dev_outputs.json: missing" in check_data("LaMP_3", root)["ready_for"]["validate"]


# ---------------------------------------------------------------------------------------------
# 3. Every cache file verified, a damaged one rebuilt


def _datamodule(data_dir: Path, cache: Path, tiny_t5: Path, tiny_bert: Path) -> LaMPDataModule:
    return LaMPDataModule(
        task=TASK,
        data_dir=str(data_dir),
        cache_dir=str(cache),
        tokenizer=str(tiny_t5),
        k=2,
        retrieval=RetrievalConfig(encoder=str(tiny_bert), k_max=4, encoder_max_length=32),
        max_input_length=64,
        test_split="test",
    )


def _outcome(data_dir: Path, cache: Path, tiny_t5: Path, tiny_bert: Path) -> dict:
    """Build (or reuse) every cache, then read back what training would see."""
    dm = _datamodule(data_dir, cache, tiny_t5, tiny_bert)
    dm.prepare_data()
    dm.setup(None)
    index = index_folder(cache, dm.task, dm.retrieval.encoder_settings())
    return {
        "embeddings": np.load(index / "embeddings.npy").tolist(),
        "items": (index / "items.jsonl").read_text(),
        "retrieved": {
            s: [(r.item_ids, r.scores) for r in load_retrieved(TASK, data_dir, s, dm.retrieval, cache, 4)]
            for s in ("train", "dev", "test")
        },
        "prompts": {s: d.table.to_dict() for s, d in dm.datasets.items()},
    }


@pytest.fixture(scope="module")
def clean(data_root, tiny_t5, tiny_bert, tmp_path_factory):
    cache = tmp_path_factory.mktemp("clean")
    return cache, _outcome(data_root, cache, tiny_t5, tiny_bert)


CACHE_FILES = {
    "embeddings": lambda cache: next(cache.glob(f"{TASK}/*/embeddings.npy")),
    "items": lambda cache: next(cache.glob(f"{TASK}/*/items.jsonl")),
    "tables npz": lambda cache: next(cache.glob(f"{TASK}/*/split-dev.npz")),
    "tables npy": lambda cache: next(cache.glob(f"{TASK}/*/user_items.npy")),
    "results": lambda cache: next(cache.glob(f"{TASK}/*/results/dev-*.npz")),
    "prompts": lambda cache: next(cache.glob(f"{TASK}/prompts/dev-*/*.arrow")),
}


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _flip(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) * 3 // 4] ^= 0x10
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("damage", [_truncate, _flip], ids=["truncated", "bit flip"])
@pytest.mark.parametrize("kind", CACHE_FILES)
def test_damaged_cache_file_is_rebuilt_to_a_clean_build(
    kind, damage, clean, data_root, tiny_t5, tiny_bert, tmp_path, caplog
):
    cache = tmp_path / "cache"
    shutil.copytree(clean[0], cache)
    path = CACHE_FILES[kind](cache)
    damage(path)
    with caplog.at_level(logging.WARNING):
        assert _outcome(data_root, cache, tiny_t5, tiny_bert) == clean[1]
    assert any(w in caplog.text for w in ("damaged", "mismatch", "truncated", "bytes,")), caplog.text
    assert CACHE_FILES[kind](cache).read_bytes() == CACHE_FILES[kind](clean[0]).read_bytes() or kind == "results"


def test_large_files_are_checked_in_full_on_verify(clean, data_root, tiny_t5, tiny_bert, tmp_path, monkeypatch):
    """Opening checksums only small files; `full_checks` (`lamp-pl index --verify`) all of them."""
    from lamp_pl import cache as cache_module

    cache = tmp_path / "cache"
    shutil.copytree(clean[0], cache)
    _flip(CACHE_FILES["embeddings"](cache))
    monkeypatch.setattr(cache_module, "SMALL_FILE", 0)
    assert _outcome(data_root, cache, tiny_t5, tiny_bert)["embeddings"] != clean[1]["embeddings"]
    with cache_module.full_checks():
        assert _outcome(data_root, cache, tiny_t5, tiny_bert) == clean[1]


def test_index_verify_flag_rebuilds_what_a_plain_open_misses(
    data_root, tiny_t5, tiny_bert, tmp_path, monkeypatch, capsys
):
    from lamp_pl import cache as cache_module

    config = _config(
        tmp_path,
        data_root,
        tiny_t5,
        task=TASK,
        retrieval={"retriever": "contriever", "encoder": str(tiny_bert), "encoder_max_length": 32},
    )
    assert main(["index", "--config", str(config)]) == 0
    store = next((tmp_path / "cache").glob(f"{TASK}/*/embeddings.npy"))
    clean_bytes = store.read_bytes()
    _flip(store)
    monkeypatch.setattr(cache_module, "SMALL_FILE", 0)  # as if every file were large
    capsys.readouterr()
    assert main(["index", "--config", str(config)]) == 0
    assert json.loads(capsys.readouterr().out)["index_reused"] and store.read_bytes() != clean_bytes
    assert main(["index", "--config", str(config), "--verify"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["verified"] and not summary["index_reused"] and store.read_bytes() == clean_bytes


def test_leftovers_of_killed_writers_are_removed(clean, data_root, tiny_t5, tiny_bert, tmp_path):
    cache = tmp_path / "cache"
    shutil.copytree(clean[0], cache)
    results = CACHE_FILES["results"](cache)
    prompts = CACHE_FILES["prompts"](cache).parent
    leftovers = [results.with_name(f".{results.name}.x1.tmp"), prompts.with_name(f".{prompts.name}.x2")]
    leftovers[0].write_bytes(b"half")
    leftovers[1].mkdir()
    _flip(results)  # forces both rebuilds, which clean up under their locks
    _flip(CACHE_FILES["prompts"](cache))
    assert _outcome(data_root, cache, tiny_t5, tiny_bert) == clean[1]
    assert not any(p.exists() for p in leftovers)


# ---------------------------------------------------------------------------------------------
# 4. Concurrent and constrained environments


def _build_in_child(args) -> str:
    data_root, cache, tiny_t5, tiny_bert, barrier = args
    barrier.wait()
    return json.dumps(_outcome(data_root, cache, tiny_t5, tiny_bert), sort_keys=True)


def test_four_concurrent_builders_all_succeed(clean, data_root, tiny_t5, tiny_bert, tmp_path):
    # spawn, not fork: a child forked after torch started its OpenMP threads can hang in them.
    context = multiprocessing.get_context("spawn")
    with context.Manager() as manager:
        barrier = manager.Barrier(4)
        with context.Pool(4) as pool:
            outcomes = pool.map(_build_in_child, [(data_root, tmp_path, tiny_t5, tiny_bert, barrier)] * 4)
    assert all(json.loads(o) == json.loads(json.dumps(clean[1])) for o in outcomes)


def _swap_many(args) -> int:
    from lamp_pl.cache import swap_in

    dest, n = args
    moved = 0
    for i in range(n):
        tmp = dest.parent / f".{dest.name}.{os.getpid()}-{i}"
        tmp.mkdir()
        (tmp / "payload").write_text(str(i))
        moved += swap_in(tmp, dest, done=lambda _: False)
    return moved


def test_racing_folder_swaps_never_fail(tmp_path):
    """The `Directory not empty` race of replacing a folder: 8 processes x 25 swaps, none fails."""
    with multiprocessing.get_context("fork").Pool(8) as pool:
        assert sum(pool.map(_swap_many, [(tmp_path / "dest", 25)] * 8)) == 200
    assert (tmp_path / "dest" / "payload").is_file()


def test_read_only_complete_cache_is_usable(clean, data_root, tiny_t5, tiny_bert, tmp_path, monkeypatch):
    """A complete cache is used without the lock and without any write.

    The tests run as root, which chmod does not stop, so the read-only disk is simulated: after
    chmod -R a-w (effective for non-root runs), every way the package writes or locks (open for
    writing, os.replace, mkdir, mkstemp/mkdtemp, FileLock) raises EROFS. This proves no write nor
    lock is attempted on a valid cache; it does not exercise a real read-only mount.
    """
    import errno
    import tempfile

    import filelock

    cache = tmp_path / "cache"
    shutil.copytree(clean[0], cache)
    for path in [cache, *cache.rglob("*")]:
        path.chmod(path.stat().st_mode & ~0o222)

    def refuse(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system (simulated)", str(args[0]) if args else "")

    real_open = builtins.open

    def read_only_open(file, mode="r", *args, **kwargs):
        if str(file).startswith(str(cache)) and any(c in mode for c in "wax+"):
            refuse(file)
        return real_open(file, mode, *args, **kwargs)

    monkeypatch.setattr(builtins, "open", read_only_open)
    for target, name in [
        (os, "replace"),
        (os, "rename"),
        (tempfile, "mkdtemp"),
        (tempfile, "mkstemp"),
        (filelock.FileLock, "acquire"),
        (Path, "mkdir"),
        (Path, "write_text"),
    ]:
        monkeypatch.setattr(target, name, refuse)
    try:
        assert _outcome(data_root, cache, tiny_t5, tiny_bert) == clean[1]
    finally:
        monkeypatch.undo()
        for path in [cache, *cache.rglob("*")]:
            path.chmod(path.stat().st_mode | 0o200)


def test_disk_full_encode_is_a_clear_error(clean, data_root, tiny_t5, tiny_bert, tmp_path):
    """A file-size limit (RLIMIT_FSIZE) just below the embedding store's size: the tables fit,
    the store does not. The build stops with one `No space left` line (exit 2), not a signal.
    (A limit makes even the sparse file of an unallocated memmap fail; the SIGBUS of a real full
    disk is prevented by allocating the store's blocks first, which this test cannot reach.)"""
    sizes = {
        name: r["size"]
        for name, r in json.loads(next(clean[0].glob(f"{TASK}/*/manifest.json")).read_text())["files"].items()
    }
    others = max(size for name, size in sizes.items() if name != "embeddings.npy")
    assert sizes["embeddings.npy"] > others + 1024, sizes
    limit = others + 512
    # The retrieval build under the entry points' error reporting (the CLI's import of Lightning
    # would only slow the child down).
    code = (
        f"import resource; resource.setrlimit(resource.RLIMIT_FSIZE, ({limit}, {limit})); "
        "from lamp_pl.errors import one_line_errors; from lamp_pl.retrieval import RetrievalConfig, "
        f"prepare_retrieval\nwith one_line_errors('index'): prepare_retrieval({TASK!r}, {str(data_root)!r}, "
        f"['dev'], RetrievalConfig(encoder={str(tiny_bert)!r}, k_max=4, encoder_max_length=32), "
        f"{str(tmp_path / 'cache')!r}, progress=False)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONDONTWRITEBYTECODE": "1"}
    done = subprocess.run(
        [sys.executable, "-c", code], check=False, capture_output=True, text=True, env=env, timeout=300
    )
    lines = [line for line in done.stderr.splitlines() if line.startswith("lamp-pl")]
    assert done.returncode == 2, done.stderr[-3000:]
    # The vectors are first written into the shared store (<cache>/embeddings/...vectors.npy).
    assert len(lines) == 1 and "No space left" in lines[0] and "vectors.npy" in lines[0], done.stderr[-3000:]
    assert not list((tmp_path / "cache").rglob("manifest.json"))


# ---------------------------------------------------------------------------------------------
# 6. Downloads that cannot splice


class _Remote(ThreadingHTTPServer):
    """One file whose content can change between requests; answers Range and If-Range."""

    daemon_threads = True

    def __init__(self, body: bytes) -> None:
        super().__init__(("127.0.0.1", 0), _RemoteHandler)
        self.body, self.requests, self.drop_next, self.after_drop = body, [], False, None
        self.honour_if_range = True

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/LaMP_1/test/test_questions.json"


class _RemoteHandler(BaseHTTPRequestHandler):
    server: _Remote

    def log_message(self, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        srv, body = self.server, self.server.body
        etag = f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"'
        srv.requests.append((self.headers.get("Range"), self.headers.get("If-Range")))
        start = int(self.headers["Range"].split("=")[1].rstrip("-")) if self.headers.get("Range") else 0
        if srv.honour_if_range and self.headers.get("If-Range", etag) != etag:
            start = 0
        self.send_response(206 if start else 200)
        if start:
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        if srv.drop_next:
            srv.drop_next = False
            self.wfile.write(body[start : start + (len(body) - start) // 2])
            self.close_connection = True
            if srv.after_drop:
                srv.body = srv.after_drop  # the remote file changes while we are away
            return
        self.wfile.write(body[start:])


def _questions_file(tag: str, n: int = 30) -> bytes:
    return json.dumps(
        [{"id": f"{tag}{i}", "input": f"q {i} " + tag * 40, "profile": [{"id": f"{tag}{i}p"}]} for i in range(n)]
    ).encode()


@pytest.fixture
def remote():
    from lamp_pl.data import download

    srv = _Remote(_questions_file("a"))
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    old_delay, download.RETRY_DELAY = download.RETRY_DELAY, 0.0
    yield srv
    download.RETRY_DELAY = old_delay
    srv.shutdown()
    srv.server_close()


@pytest.mark.parametrize("honour_if_range", [True, False], ids=["If-Range honoured", "If-Range ignored"])
def test_changed_remote_file_is_never_spliced(remote, tmp_path, honour_if_range):
    from lamp_pl.data.download import download_file

    new = _questions_file("b")
    remote.drop_next, remote.after_drop, remote.honour_if_range = True, new, honour_if_range
    path = download_file(remote.url, tmp_path / "test_questions.json", progress=False, timeout=5)
    assert path.read_bytes() == new
    first_etag = f'"{hashlib.blake2b(_questions_file("a"), digest_size=8).hexdigest()}"'
    assert remote.requests[1][1] == first_etag  # the resume named the version it held
    assert not list(tmp_path.glob("*.part*"))


@pytest.mark.parametrize("body", [b'{"error": "rate limited"}', b"[]", b'[{"id": 1}]'])
def test_error_json_never_takes_the_final_name(remote, tmp_path, body):
    from lamp_pl.data.download import DownloadError, download_file

    remote.body = body
    with pytest.raises(DownloadError, match="not a LaMP file|valid JSON"):
        download_file(remote.url, tmp_path / "test_questions.json", progress=False, timeout=5)
    assert not list(tmp_path.iterdir())


def test_concurrent_downloads_to_one_destination(remote, tmp_path):
    from lamp_pl.data import download

    base = remote.url.split("/LaMP_1/")[0]
    errors = []

    def fetch() -> None:
        try:
            download.download_lamp("LaMP_1", tmp_path, splits=["test"], base_url=base, progress=False, timeout=5)
        except Exception as error:  # noqa: BLE001 -- collected and asserted below
            errors.append(error)

    threads = [threading.Thread(target=fetch) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors and (tmp_path / "LaMP_1/test/test_questions.json").read_bytes() == remote.body
    assert len(remote.requests) == 1  # the others waited, then found it complete
