"""Tests for lamp_pl.data.download against a local HTTP server on 127.0.0.1."""

from __future__ import annotations

import hashlib
import json
import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from lamp_pl.data import download as dl

PREFIX = "/downloads/LaMP"


def _questions(tag: str) -> bytes:
    rows = [
        {
            "id": f"{tag}-{i}",
            "input": f"question {i} " + "x" * 200,
            "profile": [{"id": f"{tag}-{i}-{j}", "text": "p" * 50} for j in range(5)],
        }
        for i in range(20)
    ]
    return json.dumps(rows).encode()


def _outputs(tag: str) -> bytes:
    return json.dumps({"task": tag, "golds": [{"id": f"{tag}-{i}", "output": "y"} for i in range(20)]}).encode()


def _official_files() -> dict[str, bytes]:
    files = {}
    for time_dir in ("", "/time"):
        for remote in ("LaMP_1", "LaMP_2/new", "LaMP_2", "LaMP_3"):
            for split in dl.SPLITS:
                base = f"{PREFIX}{time_dir}/{remote}/{split}/{split}"
                tag = f"{time_dir}/{remote}/{split}"  # unique so mapping mistakes show up
                files[f"{base}_questions.json"] = _questions(tag)
                if split != "test":
                    files[f"{base}_outputs.json"] = _outputs(tag)
    return files


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def log_message(self, *args: object) -> None:  # keep pytest output quiet
        pass

    def do_GET(self) -> None:
        srv = self.server
        rng = self.headers.get("Range")
        srv.log.append((self.path, rng))
        body = srv.files.get(self.path)
        if body is None:
            self.send_error(404)
            return
        etag = f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"'
        if not srv.honour_range or self.headers.get("If-Range", etag) != etag:
            rng = None  # If-Range names another version: the whole current file, with a 200
        start = int(rng.split("=")[1].split("-")[0]) if rng else 0
        if start >= len(body) > 0:
            self.send_response(416)
            self.send_header("Content-Range", f"bytes */{len(body)}")
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        if rng:
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        payload = body[start:]
        self.send_header("ETag", etag)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        if self.path in srv.drop:
            # Simulate a connection that dies half way: full Content-Length, half a body.
            srv.drop[self.path] -= 1
            if srv.drop[self.path] <= 0:
                del srv.drop[self.path]
            self.wfile.write(payload[: len(payload) // 2])
            self.wfile.flush()
            self.close_connection = True
            return
        self.wfile.write(payload)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = _official_files()
        self.log: list[tuple[str, str | None]] = []
        self.drop: dict[str, int] = {}  # path -> how many more responses to break
        self.honour_range = True

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}{PREFIX}"


@pytest.fixture()
def server():
    srv = _Server()
    thread = threading.Thread(target=srv.serve_forever, args=(0.02,), daemon=True)
    thread.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture(autouse=True)
def _no_retry_delay(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(dl, "RETRY_DELAY", 0.0)


def _get(srv: _Server, task: str, dest: Path, **kw) -> list[Path]:
    kw.setdefault("progress", False)
    kw.setdefault("timeout", 5.0)
    return dl.download_lamp(task, dest, base_url=srv.base_url, **kw)


def test_downloads_all_splits_into_layout(server: _Server, tmp_path: Path) -> None:
    paths = _get(server, "LaMP_1", tmp_path)
    rel = sorted(str(p.relative_to(tmp_path)) for p in paths)
    assert rel == sorted(
        [
            "LaMP_1/train/train_questions.json",
            "LaMP_1/train/train_outputs.json",
            "LaMP_1/dev/dev_questions.json",
            "LaMP_1/dev/dev_outputs.json",
            "LaMP_1/test/test_questions.json",
        ]
    )
    for p in paths:
        split = p.parent.name
        assert p.read_bytes() == server.files[f"{PREFIX}/LaMP_1/{split}/{p.name}"]
    assert not (tmp_path / "LaMP_1/test/test_outputs.json").exists()
    assert not list(tmp_path.rglob("*.part"))


@pytest.mark.parametrize(
    "task,time_based,remote",
    [
        ("LaMP_2", False, "/LaMP_2/new"),
        ("LaMP_2N", False, "/LaMP_2"),
        ("LaMP_2", True, "/time/LaMP_2/new"),
        ("LaMP_3", True, "/time/LaMP_3"),
    ],
)
def test_remote_path_mapping(server: _Server, tmp_path: Path, task: str, time_based: bool, remote: str) -> None:
    (path,) = _get(server, task, tmp_path, splits=["test"], time_based=time_based)
    assert path == tmp_path / task / "test" / "test_questions.json"
    assert server.log == [(f"{PREFIX}{remote}/test/test_questions.json", None)]
    assert path.read_bytes() == server.files[server.log[0][0]]


def test_dropped_connection_is_resumed(server: _Server, tmp_path: Path) -> None:
    url_path = f"{PREFIX}/LaMP_1/dev/dev_questions.json"
    server.drop[url_path] = 1
    (path,) = [p for p in _get(server, "LaMP_1", tmp_path, splits=["dev"]) if p.name == "dev_questions.json"]
    assert path.read_bytes() == server.files[url_path]
    ranges = [r for p, r in server.log if p == url_path]
    assert ranges[0] is None and ranges[1] == f"bytes={len(server.files[url_path]) // 2}-"


def test_existing_part_file_is_resumed(server: _Server, tmp_path: Path) -> None:
    url_path = f"{PREFIX}/LaMP_1/test/test_questions.json"
    body = server.files[url_path]
    final = tmp_path / "LaMP_1/test/test_questions.json"
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".part").write_bytes(body[:100])
    final.with_name(final.name + ".part.validator").write_text(f'"{hashlib.blake2b(body, digest_size=8).hexdigest()}"')
    _get(server, "LaMP_1", tmp_path, splits=["test"])
    assert final.read_bytes() == body
    assert server.log == [(url_path, "bytes=100-")]
    assert not final.with_name(final.name + ".part.validator").exists()


def test_part_file_of_unknown_version_is_not_resumed(server: _Server, tmp_path: Path) -> None:
    url_path = f"{PREFIX}/LaMP_1/test/test_questions.json"
    final = tmp_path / "LaMP_1/test/test_questions.json"
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".part").write_bytes(b'[{"id": "old')
    _get(server, "LaMP_1", tmp_path, splits=["test"])
    assert final.read_bytes() == server.files[url_path]
    assert server.log == [(url_path, None)]


def test_ignored_range_restarts_from_scratch(server: _Server, tmp_path: Path) -> None:
    server.honour_range = False
    final = tmp_path / "LaMP_1/test/test_questions.json"
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".part").write_bytes(b"garbage that must not be kept")
    _get(server, "LaMP_1", tmp_path, splits=["test"])
    assert final.read_bytes() == server.files[f"{PREFIX}/LaMP_1/test/test_questions.json"]


def test_complete_part_file_accepted_on_416(server: _Server, tmp_path: Path) -> None:
    url_path = f"{PREFIX}/LaMP_1/test/test_questions.json"
    final = tmp_path / "LaMP_1/test/test_questions.json"
    final.parent.mkdir(parents=True)
    final.with_name(final.name + ".part").write_bytes(server.files[url_path])
    _get(server, "LaMP_1", tmp_path, splits=["test"])
    assert final.read_bytes() == server.files[url_path]


def test_broken_transfer_leaves_only_part(server: _Server, tmp_path: Path) -> None:
    url_path = f"{PREFIX}/LaMP_1/test/test_questions.json"
    server.drop[url_path] = 10
    with pytest.raises(dl.DownloadError, match="failed after 2 attempts"):
        _get(server, "LaMP_1", tmp_path, splits=["test"], retries=1)
    final = tmp_path / "LaMP_1/test/test_questions.json"
    assert not final.exists()
    part = final.with_name(final.name + ".part")
    assert 0 < part.stat().st_size < len(server.files[url_path])


def test_invalid_json_never_lands(server: _Server, tmp_path: Path) -> None:
    server.files[f"{PREFIX}/LaMP_1/test/test_questions.json"] = b"<html>oops</html>"
    with pytest.raises(dl.DownloadError, match="valid JSON"):
        _get(server, "LaMP_1", tmp_path, splits=["test"])
    assert not list((tmp_path / "LaMP_1/test").iterdir())


def test_existing_file_skipped_unless_forced(server: _Server, tmp_path: Path) -> None:
    final = tmp_path / "LaMP_1/test/test_questions.json"
    final.parent.mkdir(parents=True)
    final.write_text("[]")
    assert _get(server, "LaMP_1", tmp_path, splits=["test"]) == [final]
    assert server.log == [] and final.read_text() == "[]"
    _get(server, "LaMP_1", tmp_path, splits=["test"], force=True)
    assert final.read_bytes() == server.files[f"{PREFIX}/LaMP_1/test/test_questions.json"]


def _download(args: list[str]) -> int:
    """`lamp-pl download ARGS` as typed; a `LaMPError` is one line on stderr and exit status 2."""
    from lamp_pl.cli import main

    try:
        return main(["download", *args]) or 0
    except SystemExit as exit_:
        return exit_.code if isinstance(exit_.code, int) else 1


@pytest.mark.parametrize("task,needle", [("LaMP_6", "LDC"), ("LaMP_9", "valid tasks")])
def test_unavailable_tasks(tmp_path: Path, capsys: pytest.CaptureFixture[str], task: str, needle: str) -> None:
    assert _download(["--task", task, "--dest", str(tmp_path), "--base-url", "http://127.0.0.1:9/x"]) == 2
    err = capsys.readouterr().err
    assert needle in err and err.count("\n") == 1
    if task == "LaMP_6":
        assert "Avocado" in err and "github.com/LaMP-Benchmark/LaMP" in err
        assert "--data-dir" in err


def test_unreachable_host(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    # A bound but non-listening socket guarantees "connection refused" on this port.
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        base = f"http://127.0.0.1:{sock.getsockname()[1]}{PREFIX}"
        code = _download(
            [
                "--task",
                "LaMP_1",
                "--split",
                "dev",
                "--dest",
                str(tmp_path),
                "--base-url",
                base,
                "--no-progress",
                "--timeout",
                "5",
            ]
        )
    err = capsys.readouterr().err
    assert code == 2
    assert f"{base}/LaMP_1/dev/dev_questions.json" in err and "offline" in err
    assert str(tmp_path / "LaMP_1" / "dev") in err


def test_http_404(server: _Server, tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    del server.files[f"{PREFIX}/LaMP_1/dev/dev_outputs.json"]
    code = _download(
        ["--task", "LaMP_1", "--split", "dev", "--dest", str(tmp_path), "--base-url", server.base_url, "--no-progress"]
    )
    err = capsys.readouterr().err
    assert code == 2
    assert "404" in err and f"{server.base_url}/LaMP_1/dev/dev_outputs.json" in err
    assert not (tmp_path / "LaMP_1/dev/dev_outputs.json").exists()
