"""Synthetic proof of the official repository's remaining methods: single retrievers, the oracle,
RSPG Pre and Post, ROPG-KD and ROPG-RL, and one-stage against two-stage per-user adapters.

The data is LaMP-2 shaped (`lamp_pl.data.synthetic`, no noise) with two planted kinds of user:

* topical users (odd): an item's tag is the user's mood for the item's topic, and so is the gold,
  so the topically closest items (BM25, a dense encoder) carry the label;
* recent users (even): their newest `--recent` items carry a tag none of their other items has,
  and that tag is the gold of all their questions, so the newest items (recency) carry the label.
  Their questions' descriptions start with the words "new release", a cue in the input alone, so
  a Pre selector can tell the two kinds apart; a Post selector also sees that recency's items
  agree on a tag for recent users only.

Per seed: a tiny random T5 generator is fitted on prompts of `k` random profile items (it learns
to copy a tag that its items carry, whichever retriever chose them); every retriever of the pool
(none, bm25, recency, contriever = all-MiniLM-L6-v2) is scored on train and test by the
generator's accuracy with that retriever's prompt (`score_retrievers`); the oracle takes the best
per question; RSPG Pre and Post selectors (MiniLM + head) are distilled from the train utilities
and their test choices scored; ROPG-KD and ROPG-RL train MiniLM from `score_items` utilities of
train and join the test pool as dense retrievers; per-user LoRA adapters (k = 0) are trained in
one stage (fresh LoRA per user) and in two (task adapter, then per user from it), and tested.
Not a test: ``python bench/methods_proof.py --seeds 0 1 2`` prints a Markdown table (mean and
spread over seeds) and writes ``<workdir>/table.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

RECENT_CUE = "new release"


def planted_data(dest: Path, seed: int, users: int, questions: int, recent: int) -> Path:
    """Write the two-kind synthetic LaMP-2 data (see the module docstring) under `dest`."""
    from lamp_pl.data.synthetic import SyntheticSpec, generate
    from lamp_pl.tasks import get_task

    task = get_task("LaMP_2")
    spec = SyntheticSpec(
        users=users, questions_per_user=questions, profile_size=(10, 14), noise=0.0, text_words=10, seed=seed
    )
    folder = dest / task.name
    folder.mkdir(parents=True, exist_ok=True)
    for split, (records, outputs) in generate(spec).items():
        golds = {g["id"]: g for g in outputs["golds"]}
        for record in records:
            user = int(record["id"][:4])
            if user % 2:
                continue
            newest = sorted(record["profile"], key=lambda i: i["date"])[-recent:]
            held = {i["tag"] for i in record["profile"]}
            tag = random.Random(seed * 10_007 + user).choice([t for t in task.labels if t not in held])
            for item in newest:
                item["tag"] = tag
            golds[record["id"]]["output"] = tag
            head, _, description = record["input"].rpartition("description: ")
            record["input"] = f"{head}description: {RECENT_CUE} {description}"
        (folder / f"{split}_questions.json").write_text(json.dumps(records))
        (folder / f"{split}_outputs.json").write_text(json.dumps(outputs))
    return dest


def _corpus(data: Path) -> list[str]:
    texts = []
    for path in sorted(data.glob("*/*_questions.json")):
        for record in json.loads(path.read_text()):
            texts.append(record["input"])
            texts.extend(f"{i['description']} {i['tag']}" for i in record["profile"])
    return texts


def _config(work: Path, t5: Path, encoder: Path, args) -> Path:
    import yaml

    config = {
        "seed_everything": args.seed,
        "trainer": {
            "accelerator": "cpu",
            "devices": 1,
            "max_epochs": args.epochs,
            "default_root_dir": str(work / "generator"),
            "enable_progress_bar": False,
            "enable_model_summary": False,
            "logger": False,
        },
        "model": {
            "model_name_or_path": str(t5),
            "lr": 0.005,
            "warmup_ratio": 0.05,
            "num_beams": 1,
            "max_new_tokens": 6,
        },
        "data": {
            "task": "LaMP_2",
            "data_dir": str(work / "data"),
            "cache_dir": str(work / "cache"),
            "tokenizer": str(t5),
            "k": args.k,
            "retrieval": {"retriever": "random", "encoder": str(encoder), "encoder_max_length": 64, "k_max": 8},
            "max_input_length": 192,
            "max_target_length": 6,
            "batch_size": 16,
            "val_split": "dev",
            "test_split": "test",
        },
    }
    path = work / "generator.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def _mean_metric(records: list[dict], choose) -> float:
    return sum(r["utilities"][choose(r)]["metric"] for r in records) / max(1, len(records))


def run_seed(args, seed: int) -> dict:
    """Every row of the table for one seed."""
    import torch

    from lamp_pl.adapters import fit_users, test_users
    from lamp_pl.adapters.two_stage import fit_task_adapter
    from lamp_pl.cli import main
    from lamp_pl.commands import datamodule_from_config
    from lamp_pl.demo.models import build_tiny_t5, minilm_path
    from lamp_pl.learned.distill import fit_retriever
    from lamp_pl.learned.recipe import best_checkpoint
    from lamp_pl.learned.rl import fit_retriever_rl
    from lamp_pl.learned.scoring import score_items
    from lamp_pl.learned.selector import fit_selector
    from lamp_pl.learned.utilities import load_retriever_utilities, score_retrievers

    torch.set_num_threads(args.threads)
    args.seed = seed
    work = Path(args.workdir) / f"seed{seed}"
    planted_data(work / "data", seed, args.users, args.questions, args.recent)
    t5 = build_tiny_t5(work / "t5", _corpus(work / "data"), vocab_size=800, seed=seed)
    encoder = minilm_path()
    config = _config(work, t5, encoder, args)
    if not list((work / "generator").rglob("last*.ckpt")):
        main(["fit", "--config", str(config)])
    ckpt = best_checkpoint(work / "generator")
    dm = datamodule_from_config([str(config)], [])
    base = {"none": {"retriever": "none"}, "bm25": {"retriever": "bm25"}, "recency": {"retriever": "recency"}}
    base["contriever"] = {"retriever": "contriever"}
    train = load_retriever_utilities(score_retrievers(dm, ckpt, base, "train", progress=False))
    row: dict[str, float] = {}

    # ROPG: per-item utilities of contriever's top 8 on train, then KD and RL encoders.
    items = score_items(
        datamodule_from_config([str(config)], ["--data.retrieval.retriever", "contriever"]),
        ckpt,
        8,
        "train",
        progress=False,
    )
    trainer = {"enable_progress_bar": False}
    kw = {
        "batch_size": 16,
        "max_epochs": args.retriever_epochs,
        "lr": 1e-4,
        "max_length": 64,
        "use_metric": False,
        "trainer": trainer,
    }
    kd = fit_retriever(items, str(encoder), work / "ropg_kd", **kw)
    rl = fit_retriever_rl(items, str(encoder), work / "ropg_rl", k=args.k, samples=8, **kw)
    pool = {
        **base,
        "ropg_kd": {"retriever": "contriever", "encoder": str(kd)},
        "ropg_rl": {"retriever": "contriever", "encoder": str(rl)},
    }
    test = load_retriever_utilities(score_retrievers(dm, ckpt, pool, "test", progress=False))
    for name in pool:
        row[name] = _mean_metric(test, lambda r, n=name: n)
    row["oracle (none, bm25, recency, contriever)"] = sum(
        max(r["utilities"][n]["metric"] for n in base) for r in test
    ) / len(test)

    # RSPG: selectors distilled from the train utilities; their test choices scored.
    for mode in ("pre", "post"):
        selector = fit_selector(
            train,
            str(encoder),
            work / f"rspg_{mode}",
            mode=mode,
            temperature=0.1,
            max_epochs=args.selector_epochs,
            lr=5e-4,
            max_length=96,
            seed=seed,
            batch_size=16,
        )
        chosen = selector.choose([{"id": r["id"], "input": r["input"], "items": r["items"]} for r in test])
        row[f"RSPG-{mode.capitalize()}"] = _mean_metric(test, lambda r, c=chosen: c[r["id"]])

    # Per-user PEFT without retrieval: one stage, then two (task adapter first).
    overrides = ["--data.k", "0", "--data.retrieval.retriever", "none"]
    lora = {"r": 4, "alpha": 8, "lr": 5e-3, "overrides": overrides}
    task_adapter = fit_task_adapter([str(config)], work / "task_adapter", ckpt, epochs=1, **lora)
    for name, init in (("one-stage", None), ("two-stage", task_adapter["adapter"])):
        out = work / f"users_{name}"
        fit_users([str(config)], out, ckpt, epochs=args.user_epochs, min_profile=4, init_adapter=init, **lora)
        metrics = test_users([str(config)], out, ckpt, overrides=overrides)
        row[f"per-user LoRA, {name} (k=0)"] = metrics["test/accuracy"]
    return row


def main_cli(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--users", type=int, default=40)
    parser.add_argument("--questions", type=int, default=3)
    parser.add_argument("--recent", type=int, default=3)
    parser.add_argument("--k", type=int, default=3)
    parser.add_argument("--epochs", type=int, default=8)
    parser.add_argument("--retriever_epochs", type=int, default=2)
    parser.add_argument("--selector_epochs", type=int, default=6)
    parser.add_argument("--user_epochs", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--workdir", default="runs/methods_proof")
    args = parser.parse_args(argv)
    start, rows = time.perf_counter(), {}
    for seed in args.seeds:
        rows[seed] = run_seed(args, seed)
        print(json.dumps({"seed": seed, **rows[seed]}), flush=True)
    names = list(next(iter(rows.values())))
    print(f"\n| method (test accuracy of the tiny generator, {len(rows)} seeds) | mean | spread (min - max) |")
    print("|---|---|---|")
    for name in names:
        values = [rows[s][name] for s in rows]
        print(f"| {name} | {statistics.mean(values):.3f} | {min(values):.3f} - {max(values):.3f} |")
    seconds = round(time.perf_counter() - start, 1)
    print(f"\n{seconds} s for {len(rows)} seeds")
    Path(args.workdir, "table.json").write_text(
        json.dumps({"rows": rows, "seconds": seconds, "args": vars(args)}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main_cli())
