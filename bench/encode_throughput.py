"""Benchmark: profile-item encoding throughput of lamp_pl's Encoder, per precision.

Encodes the distinct profile-item texts of a synthetic LaMP task (length-sorted batches, under
`torch.inference_mode()`) and prints items/s for each precision. The encoder is either a folder
or hub name (`--encoder`), or, with `--shape base`, a randomly initialised encoder shaped like
Contriever (BERT-base: 768 wide, 12 layers, 12 heads), built offline: the same compute as
Contriever without needing its weights (throughput does not depend on the weights' values).

    python bench/encode_throughput.py --shape base --precisions fp32 fp16 bf16   # on a GPU
    python bench/encode_throughput.py --encoder minilm                            # on a CPU
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch  # noqa: E402

from lamp_pl.data.lamp import load_split  # noqa: E402
from lamp_pl.data.synthetic import write_synthetic  # noqa: E402
from lamp_pl.demo.models import build_tiny_bert, minilm_path  # noqa: E402
from lamp_pl.retrieval import Encoder  # noqa: E402
from lamp_pl.tasks import get_task  # noqa: E402


def distinct_texts(folder: Path, task: str, users: int) -> list[str]:
    write_synthetic(folder, task=task, users=users, profile_size=(30, 200), text_words=60)
    entry = get_task(task)
    texts = {
        entry.item_text(item)
        for split in ("train", "dev", "test")
        for q in load_split(folder, task, split)
        for item in q.profile
    }
    return sorted(texts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--encoder", default=None, help="folder, hub name, or `minilm` (the PyPI-shipped all-MiniLM-L6-v2)"
    )
    parser.add_argument("--shape", choices=["base"], default=None, help="random Contriever-shaped encoder")
    parser.add_argument("--task", default="LaMP_4")
    parser.add_argument("--users", type=int, default=100)
    parser.add_argument("--max-length", type=int, default=512)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precisions", nargs="+", default=["fp32"])
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="lamp_encode_"))
    texts = distinct_texts(work / "data", args.task, args.users)
    if args.shape == "base":
        encoder_path = str(build_tiny_bert(work / "bert-base", texts, hidden=768, layers=12, heads=12, max_length=512))
    else:
        encoder_path = str(minilm_path()) if args.encoder in (None, "minilm") else args.encoder
    results = {
        "encoder": args.shape and "random BERT-base (Contriever's shape)" or encoder_path,
        "texts": len(texts),
        "max_length": args.max_length,
        "batch_size": args.batch_size,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "threads": torch.get_num_threads(),
        "items_per_second": {},
    }
    for precision in args.precisions:
        encoder = Encoder(
            encoder_path, max_length=args.max_length, batch_size=args.batch_size, precision=precision, progress=False
        )
        encoder.encode(texts[: args.batch_size * 2])  # warm-up: kernels, allocator
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        start = time.perf_counter()
        vectors = encoder.encode(texts)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        seconds = time.perf_counter() - start
        results["items_per_second"][precision] = round(len(texts) / seconds, 1)
        print(
            f"{precision}: {len(texts)} texts in {seconds:.2f} s = {len(texts) / seconds:.1f} items/s, "
            f"dim {vectors.shape[1]}"
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
