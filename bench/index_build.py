"""Benchmark: lamp_pl's index build against the official LaMP way of retrieving with Contriever.

On synthetic data with LaMP's shape (profiles of tens to hundreds of items; a user-based variant
and a time-based one whose users' questions share most of their profile) and one encoder
(default: the real all-MiniLM-L6-v2 from `lamp_pl.demo.models.minilm_path()`), it times

* lamp_pl's first build (`prepare_retrieval`: parse, dedupe, encode, per-user FAISS top-k, cache);
* the encoder alone on the same distinct texts (the pipeline-overhead ratio should be near 1);
* the official way: for each question, encode its whole profile in original order in batches of
  4 and its query, dot products, top-k, nothing reused (under inference_mode, like ours);
* the cached rebuild (a second `prepare_retrieval`) and a new k read from the cache,

checks that both ways give the same top-k (ties allowed), and prints the ratios, peak memory, and
a final JSON line. Not a test: run ``python bench/index_build.py [--users N ...]``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import shutil
import statistics
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np  # noqa: E402
import torch  # noqa: E402

from lamp_pl.data.lamp import available_splits, load_split  # noqa: E402
from lamp_pl.data.synthetic import write_synthetic  # noqa: E402
from lamp_pl.retrieval import Encoder, ProfileIndex, RetrievalConfig, load_retrieved, prepare_retrieval  # noqa: E402
from lamp_pl.retrieval.encoder import mean_pooling  # noqa: E402
from lamp_pl.tasks import get_task  # noqa: E402


def peak_mb() -> float:
    """Peak resident memory of this process so far (Linux reports kilobytes)."""
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)


def official_way(task, data_dir: Path, encoder_path: str, k: int) -> tuple[float, dict[str, tuple[list, list]]]:
    """The official LaMP loop (prompts/contriever_retriever.py): per question, nothing reused."""
    from transformers import AutoModel, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(encoder_path)
    model = AutoModel.from_pretrained(encoder_path).eval()
    ranked: dict[str, tuple[list, list]] = {}
    start = time.perf_counter()
    with torch.inference_mode():
        for split in available_splits(data_dir, task):
            for question in load_split(data_dir, task, split):
                corpus = [task.item_text(item) for item in question.profile]
                tokens = tokenizer([task.query(question.input)], padding=True, truncation=True, return_tensors="pt")
                query = mean_pooling(model(**tokens).last_hidden_state, tokens["attention_mask"])
                scores = []
                for at in range(0, len(corpus), 4):
                    batch = tokenizer(corpus[at : at + 4], padding=True, truncation=True, return_tensors="pt")
                    vectors = mean_pooling(model(**batch).last_hidden_state, batch["attention_mask"])
                    scores.extend((query.squeeze() @ vectors.T).tolist())
                values, indices = torch.topk(torch.tensor(scores), min(k, len(scores)))
                ranked[question.id] = ([question.profile[i]["id"] for i in indices.tolist()], values.tolist())
    return time.perf_counter() - start, ranked


def agreement(task, data_dir: Path, config: RetrievalConfig, cache: Path, official: dict, k: int) -> dict:
    """Questions whose top-k ids match, or differ only among (near-)tied scores."""
    same = tied = differ = 0
    for split in available_splits(data_dir, task):
        for got in load_retrieved(task, data_dir, split, config, cache, k=k):
            ids, scores = official[got.question_id]
            if got.item_ids == ids:
                same += 1
            elif np.allclose(got.scores, scores, rtol=1e-4, atol=1e-4):
                tied += 1
            else:
                differ += 1
    return {"same": same, "tied": tied, "differ": differ}


def run_variant(name: str, args: argparse.Namespace, root: Path) -> dict:
    task = get_task(args.task)
    time_based = name == "time_based"
    data = root / name
    write_synthetic(
        data,
        task=task.name,
        users=args.time_users if time_based else args.users,
        profile_size=tuple(args.profile_size),
        questions_per_user=args.questions_per_user if time_based else 1,
        time_based=time_based,
        seed=args.seed,
    )
    splits = available_splits(data, task)
    # The agreement check is against Contriever's rule (mean pooling, inner product): pinned, so a
    # folder declaring another recipe (MiniLM: + Normalize) is still compared like for like.
    config = RetrievalConfig(
        retriever="contriever",
        k_max=args.k,
        encoder=args.encoder,
        encode_batch_size=args.batch_size,
        pooling="mean",
        normalize=False,
        encoder_max_length=512,
    )
    cache = root / f"cache-{name}"
    shutil.rmtree(cache, ignore_errors=True)  # a first build is a cold one, even in a kept --workdir
    print(f"\n== {name}: {task.name}, encoder {args.encoder}")

    start = time.perf_counter()
    first = prepare_retrieval(task, data, splits, config, cache, progress=args.progress)
    first_s = time.perf_counter() - start
    mem_build = peak_mb()

    cached = []
    for _ in range(args.repeats):
        start = time.perf_counter()
        again = prepare_retrieval(task, data, splits, config, cache, progress=False)
        cached.append(time.perf_counter() - start)
        assert again["reused"] and again["encoded"] == 0, again
    cached_s = statistics.median(cached)

    start = time.perf_counter()
    new_k = sum(len(load_retrieved(task, data, s, config, cache, k=max(1, args.k // 2))) for s in splits)
    new_k_s = time.perf_counter() - start

    # The encoder alone on exactly the texts the build encoded (distinct item texts and queries).
    index = ProfileIndex(first["cache_dir"])
    texts = [index.texts[i] for i in range(len(index.texts))]
    start = time.perf_counter()
    encoder = Encoder(args.encoder, batch_size=args.batch_size, progress=False)
    load_s = time.perf_counter() - start
    start = time.perf_counter()
    encoder.encode(texts)
    forward_s = time.perf_counter() - start
    del encoder

    official_s, official = official_way(task, data, args.encoder, args.k) if not args.skip_official else (None, {})
    entries = sum(len(q.profile) for s in splits for q in load_split(data, task, s))
    figures = {
        "variant": name,
        "users": first["users"],
        "questions": first["questions"],
        "profile_entries": entries,
        "distinct_items": first["items"],
        "distinct_texts": first["distinct_texts"],
        "encoded": first["encoded"],
        "first_build_s": round(first_s, 3),
        "encoder_load_s": round(load_s, 3),
        "encoder_forward_s": round(forward_s, 3),
        "pipeline_overhead_ratio": round(first_s / forward_s, 3),
        "items_per_second": first["items_per_second"],
        "official_s": official_s and round(official_s, 3),
        "speedup_first_vs_official": official_s and round(official_s / first_s, 2),
        "cached_rebuild_s": round(cached_s, 5),
        "speedup_cached_vs_official": official_s and round(official_s / cached_s),
        "new_k_from_cache_s": round(new_k_s, 5),
        "new_k_questions": new_k,
        "peak_rss_mb_after_build": mem_build,
        "peak_rss_mb": peak_mb(),
    }
    if official:
        figures["topk_agreement"] = agreement(task, data, config, cache, official, args.k)
    for key, value in figures.items():
        print(f"  {key:28s} {value}")
    return figures


def main(argv: list[str] | None = None) -> dict:
    from lamp_pl.demo.models import minilm_path

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--encoder", default=None, help="model folder or hub name (default: offline all-MiniLM-L6-v2)")
    parser.add_argument("--task", default="LaMP_4")
    parser.add_argument("--users", type=int, default=10, help="users of the user-based variant")
    parser.add_argument("--time-users", type=int, default=5, help="users of the time-based variant")
    parser.add_argument("--questions-per-user", type=int, default=3, help="per split, time-based variant")
    parser.add_argument("--profile-size", type=int, nargs=2, default=(30, 200))
    parser.add_argument("--k", type=int, default=5)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--repeats", type=int, default=5, help="cached rebuilds timed (median)")
    parser.add_argument(
        "--variants", nargs="+", default=["user_based", "time_based"], choices=["user_based", "time_based"]
    )
    parser.add_argument("--skip-official", action="store_true")
    parser.add_argument("--progress", action="store_true", help="show lamp_pl's progress bars")
    parser.add_argument("--workdir", default=None, help="keep data and caches here (default: a temp folder)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    args.encoder = str(args.encoder or minilm_path())
    logging.basicConfig(level=logging.WARNING)
    # Warm imports and the OS file cache once, so neither timed path pays them alone.
    Encoder(args.encoder, progress=False).encode(["warm up"])
    import faiss  # noqa: F401

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        results = {
            "encoder": args.encoder,
            "torch_threads": torch.get_num_threads(),
            "variants": [run_variant(v, args, root) for v in args.variants],
        }
    print("\n" + json.dumps(results))
    return results


if __name__ == "__main__":
    main()
