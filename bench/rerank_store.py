"""Benchmark: the reranking stage's cost per question, and the shared embedding store's saving.

1. Rerank: a first stage (dense, `contriever` rule) ranks every dev question's profile, cold
   (encoding included) and cached; then a cross-encoder rescores each question's top N
   (`--depth`) and keeps k (`--k`). Printed: seconds per question of each stage and pairs scored.
2. Shared store: task data A is indexed; data B is A with `--new-fraction` of its profile items
   retitled (another split protocol or data folder sharing most texts). B is indexed once in a cache
   of its own (cold) and once in A's cache (the store already holds A's texts). Printed: texts
   encoded and seconds of each.

Models default to tiny random ones built offline (the cost of a forward pass, not its quality);
`--encoder` and `--cross-encoder` take folders or hub names.

    python bench/rerank_store.py --users 10 --depth 8 --k 3                # a tiny smoke run
    python bench/rerank_store.py --users 200 --depth 50 --k 5 --encoder minilm
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

from lamp_pl.data.synthetic import write_synthetic  # noqa: E402
from lamp_pl.demo.models import build_tiny_bert, minilm_path  # noqa: E402
from lamp_pl.retrieval import RetrievalConfig, prepare_retrieval  # noqa: E402

TASK = "LaMP_4"


def tiny_cross_encoder(encoder: Path, dest: Path) -> Path:
    """A one-label sequence-classification head on the tiny encoder, saved as a folder."""
    import torch
    from transformers import AutoModelForSequenceClassification, AutoTokenizer

    torch.manual_seed(0)
    AutoModelForSequenceClassification.from_pretrained(encoder, num_labels=1).save_pretrained(dest)
    AutoTokenizer.from_pretrained(encoder).save_pretrained(dest)
    return dest


def timed(config: RetrievalConfig, data: Path, cache: Path) -> tuple[dict, float]:
    start = time.perf_counter()
    summary = prepare_retrieval(TASK, data, ["dev"], config, cache, progress=False)
    return summary, time.perf_counter() - start


def questions(data: Path) -> int:
    return len(json.loads((data / TASK / "dev_questions.json").read_text()))


def rerank_cost(args, work: Path, data: Path, encoder: str, cross: str) -> dict:
    first = RetrievalConfig(encoder=encoder, k_max=args.depth, device=args.device)
    _, cold = timed(first, data, work / "rerank-cache")
    _, cached = timed(dataclasses.replace(first, k_max=args.depth + 1), data, work / "rerank-cache")
    reranked = dataclasses.replace(first, k_max=args.k, rerank=cross, rerank_depth=args.depth)
    _, rerank = timed(reranked, data, work / "rerank-cache")  # the first stage is cached: rerank alone
    n = questions(data)
    return {
        "questions": n,
        "depth_N": args.depth,
        "kept_k": args.k,
        "pairs_scored_at_most": n * args.depth,
        "first_stage_cold_s_per_q": round(cold / n, 5),
        "first_stage_ranking_s_per_q": round(cached / n, 5),
        "rerank_s_per_q": round(rerank / n, 5),
    }


def retitled(source: Path, dest: Path, fraction: float) -> Path:
    """A copy of `source` whose every 1/fraction-th profile item has a new title."""
    shutil.copytree(source / TASK, dest / TASK)
    step, seen = max(1, round(1 / fraction)) if fraction > 0 else 0, 0
    for path in (dest / TASK).glob("*_questions.json"):
        records = json.loads(path.read_text())
        for record in records:
            for item in record["profile"]:
                seen += 1
                if step and seen % step == 0:
                    item["title"] = f"{item.get('title', '')} (revised {seen})"
        path.write_text(json.dumps(records))
    return dest


def store_saving(args, work: Path, data: Path, encoder: str) -> dict:
    config = RetrievalConfig(encoder=encoder, k_max=4, device=args.device)
    other = retitled(data, work / "data-b", args.new_fraction)
    cold, cold_s = timed(config, other, work / "cache-b-alone")
    timed(config, data, work / "cache-shared")
    warm, warm_s = timed(config, other, work / "cache-shared")
    return {
        "distinct_texts_b": cold["distinct_texts"],
        "b_alone_encoded": cold["encoded"],
        "b_alone_s": round(cold_s, 3),
        "b_after_a_encoded": warm["encoded"],
        "b_after_a_s": round(warm_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--users", type=int, default=50)
    parser.add_argument("--depth", type=int, default=20, help="first-stage candidates reranked per question (N)")
    parser.add_argument("--k", type=int, default=5, help="items kept after reranking")
    parser.add_argument("--new-fraction", type=float, default=0.1, help="share of B's items retitled")
    parser.add_argument("--encoder", default=None, help="folder, hub name or `minilm` (default: a tiny random BERT)")
    parser.add_argument("--cross-encoder", default=None, help="folder or hub name (default: a tiny random one)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--workdir", default=None)
    args = parser.parse_args()
    work = Path(args.workdir or tempfile.mkdtemp(prefix="lamp-rerank-bench-"))
    data = work / "data"
    write_synthetic(data, task=TASK, users=args.users, profile_size=(args.depth, 2 * args.depth))
    corpus = [
        item["title"] for q in json.loads((data / TASK / "train_questions.json").read_text()) for item in q["profile"]
    ]
    tiny = build_tiny_bert(work / "tiny-bert", corpus) if not (args.encoder and args.cross_encoder) else None
    encoder = str(minilm_path()) if args.encoder == "minilm" else args.encoder or str(tiny)
    cross = args.cross_encoder or str(tiny_cross_encoder(Path(str(tiny)), work / "tiny-cross-encoder"))
    report = {
        "rerank": rerank_cost(args, work, data, encoder, cross),
        "shared_store": store_saving(args, work, data, encoder),
    }
    print(json.dumps(report, indent=1))
    if not args.workdir:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
