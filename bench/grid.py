"""Benchmark of `lamp-pl grid`'s local launcher: 4 demo points on 2 CPU workers of one thread each
against the same 4 points run one after another (one worker, one thread).

    python bench/grid.py                         # 4 points the size of `--recipe demo`'s: 250 users, 4 epochs
    python bench/grid.py --users 100 --epochs 2   # shorter points: the fixed start-up weighs more

Both grids train and test the same points (retrievers bm25, random, recency and none on the demo
config) from caches built before either starts, so the figure is the launcher's: wall seconds of
each grid, points per minute, and the speed-up (target: at least 1.6x on 2 free cores). It also
checks that both grids wrote the same metrics. Run on a quiet machine: other processes on the cores
skew every time. Each grid also pays a fixed serial start-up (the parent's plan, each worker's
import of torch, Lightning and transformers, a first point's one-off set-up), the same with one
worker as with two, so the shorter the points the lower the ratio.
"""

from __future__ import annotations

import argparse
import csv
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RETRIEVERS = ["bm25", "random", "recency", "none"]


def grid(work: Path, out: str, workers: int, users: int, epochs: int) -> float:
    """Run the 4-point demo grid with `workers` workers of one thread; return its wall seconds."""
    args = ["--config", "demo", "--data.data_dir", str(work / "demo_data")]
    args += ["--data.tokenizer", str(work / "demo_data/tokenizer"), "--data.cache_dir", str(work / "cache")]
    args += ["--data.synthetic.users", str(users), "--trainer.max_epochs", str(epochs)]
    args += ["--trainer.enable_progress_bar", "false", "--retriever", *RETRIEVERS, "--no_plots"]
    env = dict(os.environ, OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONPATH=str(ROOT))
    command = [sys.executable, str(ROOT / "cli.py"), "grid", *args, "--out", str(work / out)]
    if workers:
        command += ["--workers", str(workers), "--devices_per_point", "1"]
    else:  # caches only: a dry run lists them, `index` builds them
        command = [sys.executable, str(ROOT / "cli.py"), "grid", *args, "--out", str(work / out), "--dry_run"]
    start = time.perf_counter()
    result = subprocess.run(command, env=env, capture_output=True, text=True, cwd=work)
    if result.returncode != 0:
        sys.exit(f"bench/grid.py: {' '.join(command)} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if not workers:
        for line in result.stdout.splitlines():
            if line.startswith("  lamp-pl index "):
                index = [sys.executable, str(ROOT / "cli.py"), *line.split()[1:]]
                subprocess.run(index, env=env, check=True, capture_output=True, cwd=work)
    return time.perf_counter() - start


def metrics(path: Path) -> list[dict[str, str]]:
    with path.open() as stream:
        return list(csv.DictReader(stream))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--users", type=int, default=250, help="synthetic demo users (10 questions each)")
    parser.add_argument("--epochs", type=int, default=4, help="training epochs per point")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one)")
    args = parser.parse_args()
    work = args.work or Path(tempfile.mkdtemp(prefix="lamp_bench_grid_"))
    work.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    subprocess.run(
        [sys.executable, str(ROOT / "cli.py"), "demo", "--dest", str(work / "demo_data")],
        env=env,
        check=True,
        capture_output=True,
    )
    grid(work, "warmup", 0, args.users, args.epochs)  # data and every cache, before the timed grids
    sequential = grid(work, "sequential", 1, args.users, args.epochs)
    parallel = grid(work, "parallel", 2, args.users, args.epochs)
    same = metrics(work / "sequential/results.csv") == metrics(work / "parallel/results.csv")
    print(f"| grid (4 demo points, {args.users} users, {args.epochs} epochs) | wall s | points/min |")
    print("|---|---|---|")
    print(f"| sequential: 1 worker x 1 thread | {sequential:.1f} | {4 / sequential * 60:.2f} |")
    print(f"| parallel: 2 workers x 1 thread | {parallel:.1f} | {4 / parallel * 60:.2f} |")
    print(f"\nspeed-up {sequential / parallel:.2f}x (target >= 1.6x); same metrics: {same}; work folder {work}")


if __name__ == "__main__":
    main()
