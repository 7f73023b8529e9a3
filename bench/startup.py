"""Start-up time of a cached `lamp-pl index` (and of `lamp-pl --help`), as whole processes.

Builds the offline demo's caches once (`lamp-pl demo`, then `lamp-pl index --config demo`, the
shipped config), then starts `lamp-pl index --config demo` again `--runs` times
(every cache is valid, so each run only parses the config, opens and checks the caches) and
prints the min / median / max wall seconds of the whole process, interpreter start included,
and its median CPU seconds.
Run by hand from the repository root (it writes `demo_data/` and `indexes/`, as the demo does):

    python bench/startup.py --runs 5
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CONFIG = "demo"  # the shipped config, by name


def command(*args: str) -> list[str]:
    """`lamp-pl <args>`: the console script when installed, else this interpreter's `lamp_pl.cli`."""
    script = shutil.which("lamp-pl")
    if script is not None:
        return [script, *args]
    return [sys.executable, "-c", "import sys; from lamp_pl.cli import main; sys.exit(main())", *args]


def run(args: list[str], cwd: Path) -> tuple[float, float]:
    """(wall seconds, CPU seconds: user + system) of one process; its output is discarded, and a
    failure ends the benchmark. CPU seconds depend less on what else the machine runs."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    done = subprocess.run(args, cwd=cwd, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise SystemExit(f"{' '.join(args)} failed ({done.returncode}):\n{done.stderr[-2000:]}")
    return seconds, after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime


def summary(times: list[tuple[float, float]]) -> dict:
    """Min, median and max wall seconds of `times`, and the median CPU seconds."""
    wall = [w for w, _ in times]
    return {
        "runs": len(times),
        "min": round(min(wall), 2),
        "median": round(statistics.median(wall), 2),
        "max": round(max(wall), 2),
        "median_cpu": round(statistics.median(c for _, c in times), 2),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="timed starts of each command")
    parser.add_argument("--workdir", type=Path, default=ROOT, help="where the demo's data and caches live")
    args = parser.parse_args(argv)
    workdir = args.workdir.resolve()  # the config names its folders relative to it
    workdir.mkdir(parents=True, exist_ok=True)
    os.environ["PYTHONPATH"] = os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])
    build = run(command("demo"), workdir)[0] + run(command("index", "--config", CONFIG), workdir)[0]
    index = [run(command("index", "--config", CONFIG), workdir) for _ in range(args.runs)]
    help_ = [run(command("--help"), workdir) for _ in range(args.runs)]
    report = {
        "cpus": os.cpu_count(),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "first_build_seconds": round(build, 2),
        "cached_index": summary(index),
        "help": summary(help_),
    }
    print(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
