"""The encoder's tokenizing, alone: texts per second of `bench/scale.py`'s tokenizer on its
LaMP-4-shaped article texts, with the fast tokenizer's parallelism off and on.

    python bench/tokenizer_threads.py                 # 20,000 texts of 30-60 words
    python bench/tokenizer_threads.py --texts 5000    # a quick look

Tokenizing every distinct profile text for the encoder is the largest part of `lamp-pl index`
outside the encoder's forward (README, "Where `lamp-pl index` spends its time"); this measures it
in calls of 4,096 texts as `lamp_pl.retrieval.encoder.Encoder.tokenize` makes them, with
`TOKENIZERS_PARALLELISM=false` (one core) and `true` (the Rust tokenizer's threads on every core;
also what an unset variable gives). Run on a quiet machine.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import scale  # noqa: E402  (this folder's benchmark: its tokenizer and vocabulary)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--texts", type=int, default=20_000, help="texts to tokenize")
    args = parser.parse_args(argv)
    from transformers import AutoTokenizer

    with tempfile.TemporaryDirectory(prefix="lamp-tokenize-") as work:
        bert, _ = scale.models(Path(work))
        tokenizer = AutoTokenizer.from_pretrained(str(bert))
        rng = random.Random(0)
        vocabulary = scale.vocabulary(rng)
        texts = [" ".join(rng.choice(vocabulary) for _ in range(rng.randint(30, 60))) for _ in range(args.texts)]
        print(f"{os.cpu_count()} CPUs; {len(texts):,} texts of 30-60 words, max_length 128, calls of 4,096\n")
        print("| TOKENIZERS_PARALLELISM | wall s | CPU s | texts/s |\n|---|---:|---:|---:|")
        for parallelism in ("false", "true"):
            os.environ["TOKENIZERS_PARALLELISM"] = parallelism  # read by the Rust side at each call
            wall, cpu = time.perf_counter(), time.process_time()
            for start in range(0, len(texts), 4096):
                tokenizer(texts[start : start + 4096], truncation=True, max_length=128, padding=False)
            wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
            print(f"| {parallelism} | {wall:.2f} | {cpu:.2f} | {len(texts) / wall:,.0f} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
