"""What importing costs before a first batch: `lamp-pl test`'s imports against `evaluate_llm.py`'s.

Not a test. Each import runs in a new interpreter `--runs` times; printed per line: the median
wall and CPU seconds (user + system) of the whole process, interpreter start included. The
official imports run in the official scripts' environment (transformers 4.27.1, see
`bench/vs_official.py`), so `--official-python` names its interpreter:

    python bench/import_cost.py --official-python ../venv/bin/python --runs 5
"""

from __future__ import annotations

import argparse
import resource
import statistics
import subprocess
import sys
import time

OURS = {
    "python alone": "pass",
    "torch": "import torch",
    "torch + transformers (T5, tokenizer)": "import torch; from transformers import AutoModelForSeq2SeqLM, AutoTokenizer",
    "lightning.pytorch (torchmetrics, scipy, torch._dynamo ...)": "import lightning.pytorch",
    "lamp_pl.cli.train (what `lamp-pl test` imports)": "import lamp_pl.cli.train",
}
OFFICIAL = {
    "python alone": "pass",
    "torch": "import torch",
    "evaluate_llm.py's imports (transformers 4.27 Trainer, datasets, evaluate)": (
        "from transformers import AutoModelForSeq2SeqLM, AutoTokenizer, Seq2SeqTrainer, Seq2SeqTrainingArguments, "
        "AutoModelForCausalLM; from transformers.data.data_collator import DataCollatorForSeq2Seq; "
        "import datasets, evaluate, rank_bm25"
    ),
}


def cost(python: str, code: str, runs: int) -> tuple[float, float]:
    """Median (wall, CPU) seconds of `python -c code` over `runs` runs, after one not counted."""
    walls, cpus = [], []
    for run in range(runs + 1):
        before, start = resource.getrusage(resource.RUSAGE_CHILDREN), time.perf_counter()
        subprocess.run([python, "-c", code], check=True, capture_output=True)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        if run:
            walls.append(wall)
            cpus.append(after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime)
    return statistics.median(walls), statistics.median(cpus)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--official-python", help="the official environment's interpreter (omit: lamp_pl only)")
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args(argv)
    print("| environment | import | wall s (median) | CPU s (median) |")
    print("|---|---|---:|---:|")
    sides = [("lamp_pl", sys.executable, OURS)]
    if args.official_python:
        sides.append(("official", args.official_python, OFFICIAL))
    for side, python, lines in sides:
        for name, code in lines.items():
            wall, cpu = cost(python, code, args.runs)
            print(f"| {side} | {name} | {wall:.2f} | {cpu:.2f} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
