"""The served family against a real `transformers serve` on loopback, behind a fault-injecting proxy.

One server (a tiny random Llama saved to a folder) is started per module. The proxy is a stdlib
HTTP server in front of it that can answer 429 with Retry-After, 500, drop the connection, stall,
or send a malformed body, and logs every request, the requests in flight and the answers relayed.
"""

from __future__ import annotations

import http.client
import json
import os
import select
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from helpers import base_args
from lamp_pl.cli import main
from lamp_pl.errors import LaMPError
from lamp_pl.models.tokenizer import load_tokenizer
from lamp_pl.served import ResponseCache, ServedError, ServedSettings, complete_all

KEY_ENV, KEY = "LAMP_PL_TEST_SERVED_KEY", "sk-lamp-test-4f1d9c0e7b"
TASK = "LaMP_2"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="module")
def server(tiny_llama):
    """`transformers serve` pinned to the tiny Llama folder, on a free loopback port."""
    port = free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(tiny_llama)]
    command += ["--host", "127.0.0.1", "--port", str(port), "--device", "cpu", "--dtype", "float32"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 180
    while True:
        try:
            connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            connection.request("GET", "/health")
            if connection.getresponse().status == 200:
                break
        except OSError:
            pass
        if process.poll() is not None or time.monotonic() > deadline:
            process.kill()
            pytest.fail(f"transformers serve did not start: {process.stderr.read().decode()[-2000:]}")
        time.sleep(0.5)
    yield port
    process.terminate()
    process.wait(timeout=30)


class Proxy:
    """Relays POSTs to the server; the first requests get `faults`; logs what it saw."""

    def __init__(self, upstream: int, faults: list[str] | None = None, delay: float = 0.0, stall: float = 5.0):
        self.faults, self.delay, self.stall = list(faults or []), delay, stall
        self.lock = threading.Lock()
        self.in_flight = self.max_in_flight = 0
        self.requested: Counter[str] = Counter()
        self.answered: Counter[str] = Counter()
        self.headers: list[str] = []
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args) -> None:
                pass

            def do_GET(self) -> None:  # the client's look at /v1/models before it sends: relayed
                upstream = http.client.HTTPConnection("127.0.0.1", proxy.upstream, timeout=60)
                upstream.request("GET", self.path)
                response = upstream.getresponse()
                payload = response.read()
                self.send_response(response.status)
                self.send_header("Content-Type", response.getheader("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                prompt = json.loads(body).get("prompt", "")
                with proxy.lock:
                    proxy.in_flight += 1
                    proxy.max_in_flight = max(proxy.max_in_flight, proxy.in_flight)
                    proxy.requested[prompt] += 1
                    proxy.headers.append(str(self.headers))
                    fault = proxy.faults.pop(0) if proxy.faults else None
                status, extra, payload = proxy.respond(fault, self.path, body, self.connection)
                with proxy.lock:  # out of flight before the answer starts: the client may go on
                    proxy.in_flight -= 1
                    if status == 200 and fault is None:
                        proxy.answered[prompt] += 1
                if status is None:  # dropped or stalled: close without an answer
                    self.close_connection = True
                    return
                self.send_response(status)
                for name, value in {"Content-Type": "application/json", **extra}.items():
                    self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.upstream, self.port = upstream, self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def respond(self, fault, path, body, connection) -> tuple[int | None, dict, bytes]:
        if fault == "429":
            return 429, {"Retry-After": "1"}, b'{"error": {"message": "slow down"}}'
        if fault == "500":
            return 500, {}, b'{"error": {"message": "boom"}}'
        if fault == "malformed":
            return 200, {}, b'{"choices": [{"tex'
        if fault == "drop":
            return None, {}, b""
        if fault == "stall":  # until the client gives up (its socket closes) or `stall` passes
            select.select([connection], [], [], self.stall)
            return None, {}, b""
        time.sleep(self.delay)
        upstream = http.client.HTTPConnection("127.0.0.1", self.upstream, timeout=60)
        upstream.request("POST", path, body, {"Content-Type": "application/json"})
        response = upstream.getresponse()
        return response.status, {}, response.read()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/v1"

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def served_section(url: str, model: Path, **extra) -> str:
    fields = {"base_url": url, "model": str(model), "max_new_tokens": 6, "backoff_s": 0.2, **extra}
    return json.dumps(fields)


def run_args(tiny_llama: Path, data_root: Path, root: Path, cache: Path) -> list[str]:
    return [*base_args(tiny_llama, data_root, cache, TASK), "--trainer.default_root_dir", str(root)]


def predictions(root: Path) -> dict:
    return json.loads(next(root.rglob("predictions_test.json")).read_text())


def metrics(root: Path) -> dict:
    return json.loads(next(root.rglob("metrics_test.json")).read_text())


@pytest.fixture(scope="module")
def local_run(tiny_llama, data_root, tmp_path_factory) -> Path:
    """The same model evaluated in this process, greedy."""
    root = tmp_path_factory.mktemp("local")
    args = run_args(tiny_llama, data_root, root / "runs", root / "cache")
    main(["test", *args, "--model.family", "causal", "--model.num_beams", "1"])
    return root / "runs"


def test_served_equals_local_greedy_through_faults_and_key_stays_secret(
    server, local_run, tiny_llama, data_root, tmp_path, monkeypatch, capsys
):
    monkeypatch.setenv(KEY_ENV, KEY)
    proxy = Proxy(server, faults=["429", "500", "drop", "stall", "malformed"])
    section = served_section(proxy.url, tiny_llama, max_concurrency=2, timeout_s=1.5, api_key_env=KEY_ENV)
    args = [*run_args(tiny_llama, data_root, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    try:
        main(["test", *args, "--model.served", section])
        with pytest.raises(SystemExit):
            main(["test", *args, "--model.served", section, "--print_config"])
    finally:
        proxy.close()
    served = predictions(tmp_path / "runs")
    assert served == predictions(local_run)
    questions = len(served["golds"])
    assert proxy.faults == [] and len(proxy.answered) == questions and set(proxy.answered.values()) == {1}
    assert proxy.max_in_flight == 2  # the bound was reached and never exceeded
    assert all(f"Bearer {KEY}" in headers for headers in proxy.headers)  # the key was sent ...
    reported = metrics(tmp_path / "runs")
    assert reported["test/served_completion_tokens"] > 0 and reported["test/served_unanswered"] == 0
    # Counted per request: each fault cost one try more; the tokens are the server's for what it answered.
    assert reported["test/served_requests"] == questions and reported["test/served_tries"] == questions + 5
    assert reported["test/served_cached"] == reported["test/served_duplicates"] == 0
    tok = load_tokenizer(str(tiny_llama))
    assert reported["test/served_prompt_tokens"] == sum(len(tok(p)["input_ids"]) for p in proxy.answered)
    # ... and written nowhere: run folder (config, cache, predictions, metrics, logs), data caches, output.
    out = capsys.readouterr()
    assert KEY not in out.out + out.err and KEY_ENV in out.out  # --print_config shows the variable's name
    for path in [*(tmp_path / "runs").rglob("*"), *(tmp_path / "cache").rglob("*")]:
        assert not path.is_file() or KEY.encode() not in path.read_bytes(), path


def test_kill_9_then_rerun_requests_only_unanswered(server, local_run, tiny_llama, data_root, tmp_path):
    proxy = Proxy(server, delay=0.3)
    section = served_section(proxy.url, tiny_llama, max_concurrency=1)
    args = [*run_args(tiny_llama, data_root, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    args += ["--model.served", section]
    cache = tmp_path / "runs" / "served_responses.jsonl"
    code = "import sys; from lamp_pl.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    child = subprocess.Popen([sys.executable, "-c", code, "test", *args], env=env, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while not (cache.exists() and cache.read_bytes().count(b"\n") >= 3) and time.monotonic() < deadline:
            assert child.poll() is None, "the served run ended before it could be killed"
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    answered = set(ResponseCache(cache).answers)
    before = Counter(proxy.requested)  # the request in flight at the kill counts as sent
    assert len(answered) >= 3 and not list((tmp_path / "runs").rglob("predictions_test.json"))
    main(["test", *args])
    proxy.close()
    rerun = proxy.requested - before
    questions = len(predictions(local_run)["golds"])
    assert sum(rerun.values()) == questions - len(answered) and set(rerun.values()) == {1}
    assert predictions(tmp_path / "runs") == predictions(local_run)
    reported = metrics(tmp_path / "runs")  # the answers cached before the kill cost nothing this time
    assert reported["test/served_cached"] == len(answered)
    assert reported["test/served_requests"] == questions - len(answered)


def test_unanswered_questions_error_or_unparseable(server, tiny_llama, data_root, tmp_path, capsys):
    proxy = Proxy(server, faults=["500"] * 2)
    args = [*run_args(tiny_llama, data_root, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    section = served_section(proxy.url, tiny_llama, max_concurrency=1, max_retries=0)
    with pytest.raises(SystemExit) as stop:
        main(["test", *args, "--model.served", section])
    assert stop.value.code == 2
    error = capsys.readouterr().err
    assert "2 of" in error and "questions unanswered" in error and "question " in error and "HTTP 500" in error
    assert sum(proxy.answered.values()) > 0  # the others were answered and cached
    proxy.faults = ["500"]
    section = served_section(proxy.url, tiny_llama, max_concurrency=1, max_retries=0, on_failure="unparseable")
    main(["test", *args, "--model.served", section])
    proxy.close()
    assert metrics(tmp_path / "runs")["test/served_unanswered"] == 1


def test_not_a_completion_names_the_question(server, tiny_llama):
    proxy = Proxy(server, faults=["malformed"] * 3)
    settings = ServedSettings(base_url=proxy.url, model=str(tiny_llama), max_retries=2, backoff_s=0.01)
    with pytest.raises(
        ServedError, match=r"1 of 1 questions unanswered by http://127.0.0.1:\d+/v1 \(question q7: not a completion"
    ):
        complete_all(settings, {"q7": "hello"}, None, progress=False)
    proxy.close()


def test_dry_run_plans_without_sending_and_fit_is_refused(server, tiny_llama, data_root, tmp_path, capsys):
    proxy = Proxy(server)
    args = [*run_args(tiny_llama, data_root, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    section = served_section(proxy.url, tiny_llama, dry_run=True, price_prompt_per_million=2.0)
    with pytest.raises(SystemExit) as stop:
        main(["test", *args, "--model.served", section])
    assert stop.value.code == 0 and not proxy.requested
    plan = json.loads(capsys.readouterr().out.split("lamp_pl served plan: ")[1].splitlines()[0])
    assert plan["requests"] == plan["questions"] > 0 and plan["prompt_tokens"] > plan["requests"]
    assert plan["prompt_cost"] == pytest.approx(plan["prompt_tokens"] * 2.0 / 1e6)
    with pytest.raises(SystemExit) as stop:
        main(["fit", *args, "--model.served", served_section(proxy.url, tiny_llama)])
    assert stop.value.code == 2 and "cannot be trained" in capsys.readouterr().err
    main(["validate", *args, "--model.served", served_section(proxy.url, tiny_llama)])
    proxy.close()
    assert proxy.answered and set(proxy.answered.values()) == {1}  # the dev split, answered once each


def test_response_cache_ignores_a_torn_last_line_and_rejects_damage(tmp_path):
    from lamp_pl.served import Completion

    path = tmp_path / "responses.jsonl"
    cache = ResponseCache(path)
    cache.add("k1", "q1", Completion("a", 3, 1))
    cache.add("k2", "q2", Completion("b", 4, 2))
    cache.close()
    whole = path.read_bytes()
    path.write_bytes(whole + b'{"key": "k3", "te')  # a kill mid-write
    assert set(ResponseCache(path).answers) == {"k1", "k2"} and path.read_bytes() == whole
    path.write_bytes(whole.replace(b'"a"', b'"z"'))
    with pytest.raises(ServedError, match="line 1 of the response cache is damaged"):
        ResponseCache(path)


def test_tiktoken_encoding_budgets_prompts():
    """`data.tokenizer: tiktoken:<encoding>` counts the budget in a tiktoken encoding (here a byte-level one
    built offline; named encodings are downloaded by tiktoken once)."""
    import tiktoken

    from lamp_pl.models.tokenizer import load_tokenizer
    from lamp_pl.prompts import build_prompt, count_tokens
    from lamp_pl.served.tiktoken_tokenizer import TiktokenTokenizer

    ranks = {bytes([i]): i for i in range(256)}
    encoding = tiktoken.Encoding(
        "bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 256}
    )
    tok = TiktokenTokenizer(encoding)
    assert tok("abc")["input_ids"] == [97, 98, 99] and tok(["ab", "c"], truncation=True, max_length=1) == {
        "input_ids": [[97], [99]]
    }
    assert tok.decode([97, 256, 98], skip_special_tokens=True) == "ab" and len(tok) == 257
    items = [{"description": "a film " * 30, "tag": "comedy"}, {"description": "a show " * 30, "tag": "drama"}]
    prompt = build_prompt("LaMP_2", "description: a dog at night", items, tok, max_length=200)
    whole = build_prompt("LaMP_2", "description: a dog at night", items, tok, max_length=10_000)
    assert "comedy" in prompt and count_tokens(tok, prompt) < 0.5 * count_tokens(tok, whole)  # cut in bytes
    with pytest.raises(LaMPError, match="unknown tiktoken encoding"):
        load_tokenizer("tiktoken:no_such_encoding")


UNKNOWN = str.maketrans({"a": "ā", "e": "ė", "i": "ī", "o": "ō", "u": "ū", "z": "ž"})
"""Characters the tiny Llama's SentencePiece vocabulary lacks (read as `<unk>`), put in the questions' texts."""


@pytest.fixture(scope="module")
def unk_data(data_root, tmp_path_factory) -> Path:
    """LaMP-2 test questions (the test and dev splits' together) whose texts hold `<unk>` characters,
    and the first question asked again under another id (one prompt, two questions)."""
    root = tmp_path_factory.mktemp("unk")
    shutil.copytree(data_root / TASK, root / TASK)
    folder = root / TASK
    questions, golds = [], []
    for split in ("test", "dev"):
        questions += json.loads((folder / f"{split}_questions.json").read_text())
        golds += json.loads((folder / f"{split}_outputs.json").read_text())["golds"]
    for question in questions:
        # Not in the tag list: the labels stay as they are. (The items' own texts lose their
        # `<unk>` characters where the prompt budget shortens them: it decodes without special ids.)
        instruction, rest = question["input"].split("tags: [")
        tags, description = rest.split("] description:")
        question["input"] = (
            f"{instruction.translate(UNKNOWN)}tags: [{tags}] description:{description.translate(UNKNOWN)}"
        )
        for item in question["profile"]:
            item["description"] = item["description"].translate(UNKNOWN)
    questions.append({**questions[0], "id": questions[0]["id"] + "9"})
    golds.append({**golds[0], "id": golds[0]["id"] + "9"})
    (folder / "test_questions.json").write_text(json.dumps(questions))
    (folder / "test_outputs.json").write_text(json.dumps({"task": TASK, "golds": golds}))
    return root


def plan_of(out: str) -> dict:
    return json.loads(out.split("lamp_pl served plan: ")[1].splitlines()[0])


def test_unk_prompts_identical_to_local_and_costs_counted_per_request(server, tiny_llama, unk_data, tmp_path, capsys):
    tok = load_tokenizer(str(tiny_llama))
    local = tmp_path / "local"
    local_args = [*run_args(tiny_llama, unk_data, local, tmp_path / "cache"), "--model.family", "causal"]
    main(["test", *local_args, "--model.num_beams", "1"])
    proxy = Proxy(server)
    args = [*run_args(tiny_llama, unk_data, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    # No model_name_or_path: a served config names its tokenizer only (the default's weights are not
    # here, and the hub is offline).
    position = args.index("--model.model_name_or_path")
    del args[position : position + 2]
    section = served_section(proxy.url, tiny_llama, price_prompt_per_million=1e6, price_completion_per_million=2e6)
    dry = served_section(proxy.url, tiny_llama, dry_run=True)
    questions = len(predictions(local)["golds"])
    for _ in range(2):  # before anything is cached, then with every answer cached
        with pytest.raises(SystemExit):
            main(["test", *args, "--model.served", dry])
        plan = plan_of(capsys.readouterr().out)
        cached = plan["cached"]
        assert plan["questions"] == questions and plan["duplicates"] == 1
        assert cached + plan["requests"] == questions - 1 and cached in (0, questions - 1)
        main(["test", *args, "--model.served", section])
        reported = metrics(tmp_path / "runs")
        assert reported["test/served_duplicates"] == 1 and reported["test/served_cached"] == cached
        assert reported["test/served_requests"] == plan["requests"]
        tokens = reported["test/served_prompt_tokens"], reported["test/served_completion_tokens"]
        if cached:  # answered from the cache: nothing sent, nothing paid
            assert tokens == (0, 0) and reported["test/served_cost"] == 0
        else:  # the server's own counts, of each distinct prompt once
            assert tokens[0] == sum(len(tok(prompt)["input_ids"]) for prompt in proxy.answered)
            assert reported["test/served_cost"] == pytest.approx(tokens[0] + 2 * tokens[1])
    proxy.close()
    assert "earlier" not in capsys.readouterr().err  # no prompt had to be cut short
    assert predictions(tmp_path / "runs") == predictions(local)
    sent = [tok(prompt)["input_ids"] for prompt in proxy.answered]
    assert len(sent) == questions - 1 and set(proxy.answered.values()) == {1}
    assert max(map(len, sent)) == 96 and sum(tok.unk_token_id in ids for ids in sent) == len(sent)


def test_refusals_are_one_line_naming_the_setting_or_url(tiny_llama, data_root, tmp_path, capsys):
    """No server needed: each is refused before a request is sent, in one line, exit status 2."""
    import functools
    from http.server import SimpleHTTPRequestHandler

    args = [*run_args(tiny_llama, data_root, tmp_path / "runs", tmp_path / "cache"), "--model.family", "served"]
    args += ["--model.served.model", str(tiny_llama)]
    web = ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(SimpleHTTPRequestHandler, directory=str(tmp_path)))
    threading.Thread(target=web.serve_forever, daemon=True).start()
    not_openai = f"http://127.0.0.1:{web.server_address[1]}/v1"
    cases = [
        (["--model.served.max_concurrency", "0"], "model.served.max_concurrency: 0 must be at least 1"),
        (["--model.served.base_url", not_openai], f"base_url {not_openai}: not an OpenAI-compatible API"),
    ]
    try:
        for extra, needle in cases:
            with pytest.raises(SystemExit) as stop:
                main(["test", *args, *extra])
            err = capsys.readouterr().err
            errors = [line for line in err.splitlines() if "error" in line.lower() or "question" in line]
            assert stop.value.code == 2 and len(errors) == 1 and needle in errors[0], err
            assert "Traceback" not in err
    finally:
        web.shutdown()
        web.server_close()
    # Nothing listening, through the console script's process: the URL once, in one line.
    nowhere = f"http://127.0.0.1:{free_port()}/v1"
    code = "import sys; from lamp_pl.cli import main; sys.exit(main(sys.argv[1:]))"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    result = subprocess.run(
        [sys.executable, "-c", code, "test", *args, "--model.served.base_url", nowhere],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in result.stderr.splitlines() if "error" in line.lower() or "question" in line]
    assert result.returncode == 2 and len(errors) == 1 and "Traceback" not in result.stderr, result.stderr
    assert errors[0].startswith("lamp-pl test: error: model.served.base_url " + nowhere + ": no OpenAI-compatible")
