"""Test-time generation with batches sorted by prompt length against batches in file order.

    python bench/generation.py                       # the demo's data, official beams (4) and max_new_tokens (128)
    python bench/generation.py --num-beams 1         # greedy
    python bench/generation.py --users 60            # a smaller demo-shaped split, for a quick look

It prepares the offline demo (`lamp_pl.demo.prepare.demo`: tokenizer and MiniLM encoder) in a work
folder, writes the demo's synthetic LaMP-2 data with `--users` users, and runs `lamp-pl test
--config configs/demo.yaml` twice on the same randomly initialised T5 (seed 0, so both runs hold the
same weights): `--data.eval_order file`, then `--data.eval_order length` (`lamp_pl.data.batching`),
each in a fresh subprocess after one warm-up run that builds the caches. It prints a markdown table
of each run's wall and CPU seconds (the child's user + system time: the figure to trust on a busy
machine), the speed-up, and whether the two predictions files are byte-identical.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def run_test(work: Path, name: str, overrides: list[str]) -> tuple[float, float, bytes]:
    """(wall seconds, CPU seconds, predictions file) of one `lamp-pl test` in a subprocess."""
    runs = work / "runs" / name
    shutil.rmtree(runs, ignore_errors=True)
    entry = "import sys; from lamp_pl.cli import main; sys.exit(main(sys.argv[1:]))"  # `lamp-pl` of this checkout
    command = [sys.executable, "-c", entry, "test", "--config", str(ROOT / "configs" / "demo.yaml")]
    command += [*overrides, "--trainer.default_root_dir", str(runs), "--trainer.enable_progress_bar", "false"]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    (path,) = runs.rglob("predictions_test.json")
    return wall, cpu, path.read_bytes()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=250, help="synthetic users (the demo's 250 by default)")
    parser.add_argument("--num-beams", type=int, default=4, help="beams (4: the official generation_num_beams)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="128: the official generation_max_length")
    parser.add_argument("--eval-batch-size", type=int, default=32)
    parser.add_argument("--max-tokens", type=int, help="also bound sorted batches by padded prompt tokens")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    from lamp_pl.demo.prepare import demo

    work = args.work or Path(tempfile.mkdtemp(prefix="lamp-generation-"))
    work.mkdir(parents=True, exist_ok=True)
    try:
        demo(work / "demo_data")
        common = [
            "--data.synthetic.users",
            str(args.users),
            "--data.eval_batch_size",
            str(args.eval_batch_size),
            "--model.num_beams",
            str(args.num_beams),
            "--model.max_new_tokens",
            str(args.max_new_tokens),
        ]
        run_test(work, "warm-up", [*common, "--data.eval_order", "file", "--model.max_new_tokens", "1"])
        file_wall, file_cpu, file_preds = run_test(work, "file", [*common, "--data.eval_order", "file"])
        sorted_args = [*common, "--data.eval_order", "length"]
        if args.max_tokens:
            sorted_args += ["--data.eval_max_tokens", str(args.max_tokens)]
        sort_wall, sort_cpu, sort_preds = run_test(work, "length", sorted_args)
        print(f"{os.cpu_count()} CPUs; beams {args.num_beams}, max_new_tokens {args.max_new_tokens}\n")
        print("| batches | wall s | CPU s |\n|---|---:|---:|")
        print(f"| file order | {file_wall:.1f} | {file_cpu:.1f} |")
        print(f"| sorted by length | {sort_wall:.1f} | {sort_cpu:.1f} |")
        print(
            f"\nspeed-up: {file_wall / sort_wall:.2f}x wall, {file_cpu / sort_cpu:.2f}x CPU (target 1.5x); "
            f"predictions files identical: {file_preds == sort_preds}"
        )
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
