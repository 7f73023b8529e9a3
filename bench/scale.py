"""Scale benchmark of `lamp-pl index`: time, peak memory and disk against the number of profile entries.

    python bench/scale.py                          # 10k, 100k, 1M entries; user- and time-based; 1 and 2 ranks
    python bench/scale.py --sizes 2000 20000 --skip-ddp --skip-train   # a quick look

It writes LaMP-4-shaped data (news articles: texts of 30-60 words, titles of 8-12, user-based
profiles of 100-500 items, about 300 on average; time-based: users whose questions share a growing
profile) with a generator of its own (lamp_pl.data.synthetic builds whole documents in memory and is
too slow at a million entries), builds a tiny BERT encoder (lamp_pl.demo.models.build_tiny_bert) so the
pipeline's own cost shows, and runs `lamp-pl index` on it in a fresh subprocess per point. Peak
resident memory is that child's ru_maxrss (os.wait4). With 2 gloo ranks, two subprocesses run this
script's `--worker` mode, which builds the same config as `lamp-pl index` does under DDP.

It prints markdown tables (paste them into the README):
* per size and layout: seconds of the child, entries/s, peak RSS, RSS per entry, cache on disk,
  the pipeline's own rate (entries / (build seconds - encoder forward seconds)) and, at 2 ranks,
  the peak RSS per rank and the speed-up of the build over 1 rank;
* the training data path (cached prompts -> collate -> batch) against the demo's tiny T5 training
  step, in samples/s.

Flags: --sizes N..., --layouts user time, --skip-ddp, --skip-train, --work DIR (kept; default a
temporary folder), --keep, --seed. OMP_NUM_THREADS, when set, is the threads of all ranks together
(default: the cores); TOKENIZERS_PARALLELISM is passed on as set (unset: the fast tokenizer uses
every core, in each rank). Run on a quiet machine: other processes on the cores skew every time.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import string
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
MB = 1 << 20
DEMO_T5 = {
    "d_model": 64,
    "d_ff": 128,
    "d_kv": 16,
    "num_layers": 2,
    "num_decoder_layers": 2,
    "num_heads": 4,
    "dropout_rate": 0.0,
}  # the demo config's model.random_init


def vocabulary(rng: random.Random, size: int = 6000) -> list[str]:
    return list(dict.fromkeys("".join(rng.choices(string.ascii_lowercase, k=rng.randint(3, 9))) for _ in range(size)))


def generate(folder: Path, entries: int, time_based: bool, seed: int) -> dict:
    """Write LaMP_4/train_questions.json (+ outputs) with about `entries` profile entries."""
    rng = random.Random(seed)
    words = vocabulary(random.Random(0))
    phrases = [" ".join(rng.choices(words, k=10)) for _ in range(20000)]  # texts are joins of phrases

    def text(lo: int, hi: int) -> str:
        return " ".join(rng.choices(phrases, k=rng.randint(lo, hi)))

    def item(uid: str, j: int) -> dict:
        return {
            "text": text(3, 6),
            "title": " ".join(rng.choices(words, k=rng.randint(8, 12))),
            "id": f"{uid}{j:04d}",
            "date": f"20{rng.randint(10, 19)}-0{rng.randint(1, 9)}-1{rng.randint(0, 9)}",
        }

    task_dir = folder / "LaMP_4"
    task_dir.mkdir(parents=True, exist_ok=True)
    written, questions, golds = 0, 0, []
    with open(task_dir / "train_questions.json", "w") as out:
        out.write("[")
        user = 0
        while written < entries:
            uid, size = f"{user:07d}", rng.randint(100, 500)
            profile = [item(uid, j) for j in range(size)]
            # Time-based: 3 questions per user, each seeing a longer prefix of one profile.
            cuts = [size * (i + 2) // 4 for i in range(3)] if time_based else [size]
            for cut in cuts:
                qid = f"{uid}{len(golds):02d}"
                record = {
                    "id": qid,
                    "input": f"Generate a headline for the following article: {text(3, 6)}",
                    "profile": profile[:cut],
                }
                if time_based:
                    record["user_id"] = uid
                out.write(("," if questions else "") + json.dumps(record))
                golds.append({"id": qid, "output": " ".join(rng.choices(words, k=10))})
                written, questions = written + cut, questions + 1
            user += 1
        out.write("]")
    (task_dir / "train_outputs.json").write_text(json.dumps({"task": "LaMP_4", "golds": golds}))
    return {
        "entries": written,
        "questions": questions,
        "users": user,
        "json_mb": (task_dir / "train_questions.json").stat().st_size / MB,
    }


def models(work: Path) -> tuple[Path, Path]:
    """A tiny BERT encoder and a T5 tokenizer whose vocabularies know the generator's words."""
    from lamp_pl.demo.models import build_tiny_bert
    from lamp_pl.demo.tokenizers import train_t5_tokenizer

    corpus = [" ".join(vocabulary(random.Random(0)))] * 4
    bert = build_tiny_bert(work / "bert", corpus, max_length=128)
    tokenizer = work / "t5-tokenizer"
    if not (tokenizer / "tokenizer.json").is_file():
        train_t5_tokenizer(corpus, vocab_size=8000).save_pretrained(tokenizer)
    return bert, tokenizer


def write_config(path: Path, data: Path, cache: Path, bert: Path, tokenizer: Path) -> Path:
    config = {
        "data": {
            "task": "LaMP_4",
            "data_dir": str(data),
            "cache_dir": str(cache),
            "tokenizer": str(tokenizer),
            "k": 1,
            "retrieval": {
                "retriever": "contriever",
                "encoder": str(bert),
                "k_max": 1,
                "encoder_max_length": 128,
                "device": "cpu",
            },
            "max_input_length": 256,
            "max_target_length": 32,
            "batch_size": 32,
            # One generated split serves every stage, so the stage check finds what it needs.
            "val_split": "train",
            "test_split": "train",
            "predict_split": "train",
        }
    }
    path.write_text(json.dumps(config))  # JSON is YAML
    return path


class Child(subprocess.Popen):
    """A Popen whose reaping keeps the child's own rusage: its peak RSS (ru_maxrss), not the
    maximum over every child this process has waited for, as RUSAGE_CHILDREN would give."""

    peak_rss = 0

    def _try_wait(self, wait_flags):  # type: ignore[override]  # CPython's reaping hook
        try:
            pid, status, usage = os.wait4(self.pid, wait_flags)
        except ChildProcessError:
            return self.pid, 0
        if pid:
            self.peak_rss = usage.ru_maxrss * 1024
        return pid, status


def run(commands: list[list[str]], env: dict | None = None) -> tuple[float, list[int], list[str]]:
    """Start the commands together; (wall seconds, peak RSS bytes of each, stdout of each)."""
    start = time.perf_counter()
    # TOKENIZERS_PARALLELISM is left as the caller's environment has it: unset (what users run),
    # the fast tokenizer tokenizes a call's texts on every core.
    env = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    # Output goes to files, not pipes: waiting on one rank while another fills its unread stderr
    # pipe (progress bars) would block that rank, and the first one with it at the next barrier.
    logs = [(tempfile.TemporaryFile("w+"), tempfile.TemporaryFile("w+")) for _ in commands]
    procs = [Child(c, cwd=ROOT, env=env, stdout=o, stderr=e, text=True) for c, (o, e) in zip(commands, logs)]
    outputs = []
    for proc, command, (out, err) in zip(procs, commands, logs, strict=True):
        proc.wait()
        out.seek(0)
        err.seek(0)
        outputs.append(out.read())
        if proc.returncode:
            raise SystemExit(f"{' '.join(command)} failed:\n{err.read()[-4000:]}")
        out.close()
        err.close()
    return time.perf_counter() - start, [p.peak_rss for p in procs], outputs


def disk(folder: Path) -> int:
    return sum(p.stat().st_size for p in folder.rglob("*") if p.is_file())


def manifest(cache: Path) -> dict:
    return json.loads(next(cache.rglob("manifest.json")).read_text())


def index_point(work: Path, name: str, bert: Path, tokenizer: Path, ranks: int) -> dict:
    """Build the caches of data `work/name` from scratch with 1 process or `ranks` gloo workers."""
    cache = work / f"cache-{name}-{ranks}"
    shutil.rmtree(cache, ignore_errors=True)
    config = write_config(work / f"{name}-{ranks}.yaml", work / name, cache, bert, tokenizer)
    port = str(29500 + random.Random().randrange(2000))
    commands = [
        [
            sys.executable,
            __file__,
            "--worker",
            str(config),
            "--rank",
            str(r),
            "--world-size",
            str(ranks),
            "--port",
            port,
        ]
        for r in range(ranks)
    ]
    # Each rank gets an equal share of the threads (OMP_NUM_THREADS, else the cores), as DDP's
    # launcher gives it; more threads than cores makes torch's threads spin against each other.
    threads = str(max(1, int(os.environ.get("OMP_NUM_THREADS") or os.cpu_count() or 1) // ranks))
    wall, peaks, outputs = run(commands, {"OMP_NUM_THREADS": threads, "MKL_NUM_THREADS": threads})
    build = max(json.loads(out.strip().splitlines()[-1])["build_seconds"] for out in outputs)
    info = manifest(cache)["info"]
    return {
        "wall": wall,
        "build": build,
        "peaks": peaks,
        "disk": disk(cache),
        "forward": info.get("forward_seconds", 0.0),
        "encode": info.get("encode_seconds", 0.0),
        "ingest": info["ingest"]["seconds"],
        "store": next(cache.rglob("embeddings.npy")).stat().st_size,
    }


class GlooRanks:
    """What `LaMPData.build` needs of a Lightning strategy, over a bare gloo process group."""

    def __init__(self, rank: int) -> None:
        self.rank = rank

    def barrier(self, *_: object) -> None:
        import torch.distributed as dist

        dist.barrier()

    def reduce_boolean_decision(self, decision: bool, all: bool = True) -> bool:  # noqa: A002 -- Lightning's name
        import torch
        import torch.distributed as dist

        flag = torch.tensor(int(decision))
        dist.all_reduce(flag, op=dist.ReduceOp.MIN if all else dist.ReduceOp.MAX)
        return bool(flag.item())

    def broadcast(self, obj: object, src: int = 0) -> object:
        import torch.distributed as dist

        holder = [obj]
        dist.broadcast_object_list(holder, src=src)
        return holder[0]


def worker(config: str, rank: int, world_size: int, port: str) -> None:
    """One point's process: `lamp-pl index` itself with 1 rank; with more, one gloo rank doing what
    `lamp-pl index` does (the config's data caches) under DDP. Prints its build seconds last."""
    from lamp_pl.cli import main
    from lamp_pl.cli.config import datamodule_from_config

    start = time.perf_counter()
    if world_size == 1:
        main(["index", "--config", config])
    else:
        import torch.distributed as dist

        os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        dist.init_process_group("gloo", rank=rank, world_size=world_size)
        datamodule = datamodule_from_config([config])
        datamodule.build(datamodule.splits_for(None), rank, world_size, strategy=GlooRanks(rank))
        dist.destroy_process_group()
    print(json.dumps({"build_seconds": time.perf_counter() - start}))


def training_path(work: Path, name: str, bert: Path, tokenizer: Path, seconds: float = 5.0) -> tuple[float, float]:
    """(samples/s of cached prompts -> collate -> batch, samples/s of the demo T5's training step)."""
    import torch
    from transformers import T5Config, T5ForConditionalGeneration

    from lamp_pl.cli.config import datamodule_from_config

    datamodule = datamodule_from_config([str(work / f"{name}-1.yaml")])
    datamodule.load("fit")
    loader = datamodule.loader(datamodule.train_split, train=True)

    def rate(step) -> float:
        step(next(iter(loader)))  # warm-up: first-call allocations and the optimizer's state
        done, start = 0, time.perf_counter()
        while time.perf_counter() - start < seconds:
            for batch in loader:
                step(batch)
                done += len(batch["input_ids"])
                if time.perf_counter() - start >= seconds:
                    break
        return done / (time.perf_counter() - start)

    loading = rate(lambda batch: None)
    model = T5ForConditionalGeneration(
        T5Config(
            vocab_size=len(datamodule.tokenizer),
            **DEMO_T5,
            pad_token_id=datamodule.tokenizer.pad_token_id,
            decoder_start_token_id=datamodule.tokenizer.pad_token_id,
        )
    )
    optimizer = torch.optim.AdamW(model.parameters(), lr=5e-3)

    def train(batch) -> None:
        loss = model(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"], labels=batch["labels"]).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad()

    return loading, rate(train)


def imports_rss() -> int:
    code = "import torch, transformers, lamp_pl.cli.caches, lamp_pl.retrieval.build, lamp_pl.retrieval.encoder"
    return run([[sys.executable, "-c", code]])[1][0]


def table_row(rows: list[dict], base: int) -> str:
    """The markdown row of the last point (its speed-up against the 1-rank point before it)."""
    row, peak = rows[-1], max(rows[-1]["peaks"])
    pipeline = row["entries"] / max(row["build"] - row["forward"], 1e-9)
    speedup = f"{rows[-2]['build'] / row['build']:.2f}x" if row["ranks"] > 1 else ""
    return (
        f"| {row['layout']} | {row['entries']:,} | {row['questions']:,} | {row['json_mb']:.0f} | {row['ranks']} "
        f"| {row['wall']:.1f} | {row['entries'] / row['build']:,.0f} | {pipeline:,.0f} "
        f"| {' / '.join(f'{p / MB:.0f}' for p in row['peaks'])} | {(peak - base) / MB:.0f} "
        f"| {(peak - base) / row['entries'] / 1024:.2f} | {row['store'] / MB:.1f} | {row['disk'] / MB:.0f} "
        f"| {speedup} |"
    )


def breakdown(rows: list[dict]) -> str:
    """Where each build's seconds go: rank 0's parse of the questions (serial), rank 0's share of
    the encoding (tokenizing + forward: the part split over ranks) and the rest (imports, ranking,
    prompts: serial), with the bound Amdahl's law sets on 2 ranks from the 1-rank split."""
    lines = [
        "",
        "| layout | entries | ranks | build s | parse + digest s (rank 0) | encoding s (rank 0's share) "
        "| rest s (imports, ranking, prompts) | 2-rank bound from this split |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rest = row["build"] - row["ingest"] - row["encode"]
        serial = row["build"] - row["encode"]
        bound = f"{row['build'] / (serial + row['encode'] / 2):.2f}x" if row["ranks"] == 1 else ""
        lines.append(
            f"| {row['layout']} | {row['entries']:,} | {row['ranks']} | {row['build']:.1f} | {row['ingest']:.1f} "
            f"| {row['encode']:.1f} | {rest:.1f} | {bound} |"
        )
    return "\n".join(lines)


def targets(rows: list[dict], base: int, training: tuple[float, float] | None, lamp4: int = 3_700_000) -> str:
    """Issue 11's targets, met or not, from the largest size of each layout, with the slope between
    the smallest and largest sizes (memory and time per entry) and its extrapolation to LaMP-4
    (meaningful when the sizes span 10x or more: below ~100k entries noise dominates the slope)."""
    lines = ["", "Targets (largest size of each layout):"]
    for layout in dict.fromkeys(r["layout"] for r in rows):
        ones = [r for r in rows if r["layout"] == layout and r["ranks"] == 1]
        big, small = ones[-1], ones[0]
        peak, bound = max(big["peaks"]), base + 1024 * MB + 1.5 * big["store"]
        lines.append(
            f"- {layout}, {big['entries']:,} entries: peak RSS {peak / MB:.0f} MB <= imports + 1 GB + "
            f"1.5 x store = {bound / MB:.0f} MB: {'met' if peak <= bound else 'NOT met'}"
        )
        pipeline = big["entries"] / max(big["build"] - big["forward"], 1e-9)
        lines.append(
            f"- {layout}: pipeline (all but the encoder forward) {pipeline:,.0f} entries/s >= 20,000: "
            f"{'met' if pipeline >= 20_000 else 'NOT met'}"
        )
        if big is not small:
            span = big["entries"] - small["entries"]
            per_entry = (max(big["peaks"]) - max(small["peaks"])) / span
            per_second = span / max(big["build"] - small["build"], 1e-9)
            own = span / max((big["build"] - big["forward"]) - (small["build"] - small["forward"]), 1e-9)
            lines.append(
                f"- {layout}: marginal pipeline rate (fixed start-up costs cancelled) {own:,.0f} entries/s "
                f">= 20,000: {'met' if own >= 20_000 else 'NOT met'}"
            )
            lines.append(
                f"- {layout}: slope {per_entry:,.0f} B of peak RSS and {1e6 / per_second:,.1f} us per entry "
                f"({small['entries']:,} -> {big['entries']:,}); LaMP-4 user-based train ({lamp4:,} entries) "
                f"extrapolates to {(max(big['peaks']) + per_entry * (lamp4 - big['entries'])) / MB:,.0f} MB "
                f"and {big['build'] + (lamp4 - big['entries']) / per_second:,.0f} s"
            )
        twos = [r for r in rows if r["layout"] == layout and r["ranks"] == 2 and r["name"] == big["name"]]
        if twos:
            two = twos[0]
            lines.append(
                f"- {layout}: 2 ranks, peak per rank {' / '.join(f'{p / MB:.0f}' for p in two['peaks'])} MB "
                f"vs 1 process {peak / MB:.0f} MB: {'met' if max(two['peaks']) <= peak * 1.05 else 'NOT met'}; "
                f"speed-up {big['build'] / two['build']:.2f}x >= 1.7x: "
                f"{'met' if big['build'] / two['build'] >= 1.7 else 'NOT met'}"
            )
    if training:
        ratio = training[0] / training[1]
        lines.append(
            f"- training data path {ratio:.0f}x the demo model's training step >= 20x: "
            f"{'met' if ratio >= 20 else 'NOT met'}"
        )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        default=[10_000, 100_000, 1_000_000],
        help="profile entries per point (default: 10k 100k 1M)",
    )
    parser.add_argument(
        "--layouts",
        nargs="+",
        choices=["user", "time"],
        default=["user", "time"],
        help="user-based (one profile per question) and/or time-based (users' questions share one)",
    )
    parser.add_argument("--skip-ddp", action="store_true", help="no 2-rank gloo points")
    parser.add_argument("--skip-train", action="store_true", help="no training data path measurement")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--rank", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--world-size", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--port", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.worker:
        worker(args.worker, args.rank, args.world_size, args.port)
        return 0
    work = args.work or Path(tempfile.mkdtemp(prefix="lamp-scale-"))
    work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        bert, tokenizer = models(work)
        base = imports_rss()
        print(f"imports alone: {base / MB:.0f} MB peak RSS; {os.cpu_count()} CPUs\n")
        print(
            "| layout | entries | questions | JSON MB | ranks | seconds | entries/s | pipeline entries/s "
            "| peak RSS MB (per rank) | over imports MB | RSS/entry KB | store MB | cache MB | speed-up |"
        )
        print("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
        rows: list[dict] = []
        for layout in args.layouts:
            for size in args.sizes:
                name = f"{layout}-{size}"
                shape = generate(work / name, size, layout == "time", args.seed)
                for ranks in (1,) if args.skip_ddp else (1, 2):
                    rows.append(
                        {
                            "layout": layout,
                            "name": name,
                            "ranks": ranks,
                            **shape,
                            **index_point(work, name, bert, tokenizer, ranks),
                        }
                    )
                    print(table_row(rows, base), flush=True)
        training = None
        if not args.skip_train and rows:
            training = training_path(work, rows[0]["name"], bert, tokenizer)
            print(
                f"\n| training data path | samples/s |\n|---|---:|\n| cached prompts -> collate -> batch "
                f"| {training[0]:,.0f} |\n| demo tiny T5 training step | {training[1]:,.0f} |\n"
                f"| ratio | {training[0] / training[1]:.0f}x |"
            )
        print(breakdown(rows))
        print(targets(rows, base, training))
        print(
            f"\n(seconds: the child's wall time, imports included; entries/s and pipeline entries/s use the build's own "
            f"seconds; pipeline = build seconds minus encoder forward seconds; speed-up: 1-rank build seconds over "
            f"2-rank build seconds. Total benchmark time {time.perf_counter() - started:.0f} s.)"
        )
    finally:
        if not (args.keep or args.work):
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
