"""Throughput of the served client as `max_concurrency` grows, against a fixed-latency endpoint.

A loopback OpenAI-compatible stub (a separate process, a thread per request) answers every
`/v1/completions` request after exactly `--latency` seconds. With `c` requests in flight the ideal
throughput is `c / latency`; the table shows what `lamp_pl.served.complete_all` reaches (response
cache on disk included) and its own overhead per request (time per request in flight beyond the
latency) and the CPU time this process spent per request (the client's cost when CPUs are
shared: the wall-clock overhead grows once that CPU time times the rate exceeds the CPU it gets). With `--tiny`, it also times `lamp-pl test` on a tiny random Llama evaluated locally and
through `transformers serve`.

    python bench/served.py                        # latency 0.2 s, concurrency 1 8 32 64
    python bench/served.py --latency 0.2 --concurrency 1 8 32 64 --tiny
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import socket
import tempfile
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path


def serve_fixed_latency(port_out, latency: float) -> None:
    """Answer every POST after `latency` seconds with a one-word completion."""

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_POST(self) -> None:
            self.rfile.read(int(self.headers["Content-Length"]))
            time.sleep(latency)
            body = json.dumps(
                {
                    "id": "x",
                    "object": "text_completion",
                    "created": 0,
                    "model": "stub",
                    "choices": [{"text": " comedy", "index": 0, "finish_reason": "stop"}],
                    "usage": {"prompt_tokens": 100, "completion_tokens": 2, "total_tokens": 102},
                }
            ).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self.wfile.write(head.encode() + body)  # one write: no Nagle / delayed-ACK stall of 40 ms

        def do_GET(self) -> None:  # the client's look at /v1/models before it sends
            body = json.dumps({"object": "list", "data": [{"id": "stub", "object": "model"}]}).encode()
            head = f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
            self.wfile.write(head.encode() + body)

        def setup(self) -> None:
            super().setup()
            self.connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    server.request_queue_size = 256
    port_out.put(server.server_address[1])
    server.serve_forever()


def concurrency_table(latency: float, levels: list[int], rounds: int) -> list[dict]:
    from lamp_pl.served import ServedSettings, complete_all

    queue: multiprocessing.Queue = multiprocessing.Queue()
    stub = multiprocessing.Process(target=serve_fixed_latency, args=(queue, latency), daemon=True)
    stub.start()
    port = queue.get(timeout=30)
    rows = []
    try:
        with tempfile.TemporaryDirectory() as tmp:
            warm = ServedSettings(base_url=f"http://127.0.0.1:{port}/v1", model="stub")
            complete_all(warm, {"warm": "up"}, None, progress=False)  # imports and first connection
            for c in levels:
                n = c * rounds
                prompts = {f"q{c}-{i}": f"prompt {c} {i} " + "word " * 50 for i in range(n)}
                settings = ServedSettings(base_url=f"http://127.0.0.1:{port}/v1", model="stub", max_concurrency=c)
                start, cpu = time.perf_counter(), time.process_time()
                answers = complete_all(settings, prompts, Path(tmp) / f"c{c}.jsonl", progress=False)
                seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
                assert len(answers) == n
                throughput, ideal = n / seconds, c / latency
                rows.append(
                    {
                        "max_concurrency": c,
                        "requests": n,
                        "seconds": round(seconds, 2),
                        "requests_per_s": round(throughput, 1),
                        "ideal_per_s": round(ideal, 1),
                        "efficiency": round(throughput / ideal, 3),
                        "overhead_ms_per_request": round(1000 * (seconds * c / n - latency), 1),
                        "client_cpu_ms_per_request": round(1000 * cpu / n, 2),
                    }
                )
                print(json.dumps(rows[-1]), flush=True)
    finally:
        stub.terminate()
    return rows


def tiny_comparison(workdir: Path) -> dict:
    """Seconds of `lamp-pl test` on a tiny Llama: loaded here vs behind `transformers serve`."""
    import http.client
    import subprocess
    import sys

    from lamp_pl.cli import main
    from lamp_pl.data.synthetic import write_synthetic
    from lamp_pl.demo.models import build_tiny_causal

    data = workdir / "data"
    write_synthetic(data, task="LaMP_2", users=40, profile_size=(4, 12))
    corpus = [r["input"] for r in json.loads(next(data.glob("*/*_questions.json")).read_text())]
    model = build_tiny_causal(workdir / "llama", corpus * 3, vocab_size=400)
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    command = [str(Path(sys.executable).parent / "transformers"), "serve", str(model), "--host", "127.0.0.1"]
    server = subprocess.Popen([*command, "--port", str(port), "--device", "cpu"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(600):
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
                connection.request("GET", "/health")
                if connection.getresponse().status == 200:
                    break
            except OSError:
                time.sleep(0.5)
        common = ["--data.task", "LaMP_2", "--data.data_dir", str(data), "--data.tokenizer", str(model)]
        common += ["--data.cache_dir", str(workdir / "cache"), "--data.retrieval.retriever", "bm25", "--data.k", "1"]
        common += ["--data.max_input_length", "96", "--data.test_split", "test", "--trainer.accelerator", "cpu"]
        common += ["--trainer.enable_progress_bar", "false", "--model.max_new_tokens", "6", "--model.num_beams", "1"]
        local = ["--model.family", "causal", "--model.model_name_or_path", str(model)]
        main(["test", *common, *local, "--trainer.default_root_dir", str(workdir / "warm")])
        timings: dict = {}
        for family, extra in [
            ("causal", local[2:]),
            (
                "served",
                [
                    "--model.served",
                    json.dumps(
                        {
                            "base_url": f"http://127.0.0.1:{port}/v1",
                            "model": str(model),
                            "max_new_tokens": 6,
                            "max_concurrency": 8,
                        }
                    ),
                ],
            ),
        ]:
            start = time.perf_counter()
            main(
                ["test", *common, "--model.family", family, *extra, "--trainer.default_root_dir", str(workdir / family)]
            )
            timings[f"{family}_seconds"] = round(time.perf_counter() - start, 2)
        same = json.loads(next((workdir / "causal").rglob("predictions_test.json")).read_text()) == json.loads(
            next((workdir / "served").rglob("predictions_test.json")).read_text()
        )
        # The served prompts are cut where the local model's are (same ids, `<unk>` included).
        timings["identical_predictions"] = same
        served = json.loads(next((workdir / "served").rglob("metrics_test.json")).read_text())
        timings["served_requests"] = served["test/served_requests"]
        timings["served_prompt_tokens"] = served["test/served_prompt_tokens"]
        timings["questions"] = len(
            json.loads(next((workdir / "causal").rglob("predictions_test.json")).read_text())["golds"]
        )
        return timings
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--latency", type=float, default=0.2, help="seconds the stub takes per request")
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8, 32, 64])
    parser.add_argument("--rounds", type=int, default=8, help="requests per level = concurrency * rounds")
    parser.add_argument("--tiny", action="store_true", help="also time lamp-pl test locally vs served (tiny Llama)")
    args = parser.parse_args()
    concurrency_table(args.latency, args.concurrency, args.rounds)
    if args.tiny:
        with tempfile.TemporaryDirectory() as tmp:
            print(json.dumps(tiny_comparison(Path(tmp))), flush=True)


if __name__ == "__main__":
    main()
