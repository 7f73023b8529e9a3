"""Synthetic proof of the learned-retrieval methods, through the `lamp-pl` commands: each single
retriever, the oracle, RSPG Pre and Post, ROPG-KD and ROPG-RL, one- and two-stage per-user LoRA.

Not a test: ``OMP_NUM_THREADS=2 python bench/methods_proof.py --size full --threads 2`` prints a
Markdown table (mean and spread over seeds, overall and per kind of user), each method against its
baseline with the paired bootstrap interval on the same questions, and writes
``<workdir>/table.json``; ``--size tiny`` checks in a few minutes that every command runs. Per seed it writes two LaMP-2 data folders of its own:

* **copy** (the generator's training data): each question's profile is two items with one random
  tag, and the gold is that tag. A tiny random T5 fitted on it with k = 1 learns to answer with
  the tag of the item in its prompt, so its test accuracy with a retriever is how often that
  retriever's top item carries the gold. The check rows prove it learned: on the planted test
  questions, prompts with a planted right item (an item whose tag is the gold) against a wrong
  item (any other) and no item.
* **planted** (every method's data): users map each topic to a tag (half the topics to a tag
  shared by all users), items are about one topic each. *Topical* users' items and golds follow
  their map, so the topically closest item (BM25, a dense encoder) carries the gold. *Recent*
  users' two newest items carry a tag none of their other items has, and that tag is the gold of
  all their questions, whose descriptions start with "new release": recency finds the gold, a
  per-input selector can tell the kinds apart, and the oracle over the pool gets both.

Every step is a `lamp-pl` command run in this process (`lamp_pl.cli.main`): `fit` and `test` of
the generator, `score-retrievers` (train and test), `fit-selector` and `select` (`--utilities`
prints the choice shares) then `test` with ``retriever: selected``, `score-items` with
`fit-retriever` (ROPG-KD) and `fit-retriever-rl` (ROPG-RL) on a tiny random BERT (untrained, its
ranking is near random, so what it gains is learned from the generator's feedback; also the
selectors' encoder), `fit-task-adapter`, `fit-users` (with and without `--init_adapter`) and
`test-users` with k = 0 and with BM25.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import random
import re
import shlex
import statistics
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

TAGS = ("comedy", "action", "classic", "fantasy", "romance", "violence", "sci-fi", "dystopia")
CUE = "new release"
MARK = "velumo"
"""The word a recent user's newest items carry (``--mark``): text a trained retriever can learn to
pair with the cue, which shares no word with it (BM25 cannot match them) and means nothing to an
untrained encoder."""
POOL = {n: {"retriever": n} for n in ("none", "bm25", "recency", "contriever")}
"""The retrievers the selectors choose from (contriever: all-MiniLM-L6-v2) and the oracle's."""


class World:
    """Topic words and filler words (made-up syllable words) that descriptions are drawn from."""

    def __init__(self, seed: int, topics: int = 6, per_topic: int = 10) -> None:
        """One vocabulary for every seed (so one tokenizer and one generator serve them all);
        `seed` seeds what is drawn from it."""
        from lamp_pl.data.synthetic import INPUTS
        from lamp_pl.tasks import get_task

        rng = random.Random(0)
        words = sorted(
            {
                "".join(rng.choice("bdfgklmnprstvz") + rng.choice("aeiou") for _ in range(3))
                for _ in range(topics * per_topic * 3)
            }
        )
        rng.shuffle(words)
        self.rng = random.Random(seed)
        self.topics = [words[i * per_topic : (i + 1) * per_topic] for i in range(topics)]
        self.filler = words[topics * per_topic : topics * per_topic + 30]
        self.template = INPUTS["LaMP_2"].replace("{labels}", ", ".join(get_task("LaMP_2").labels or ()))

    def text(self, topic: int) -> str:
        words = self.rng.sample(self.topics[topic], 5) + [self.rng.choice(self.filler)]
        self.rng.shuffle(words)
        return " ".join(words)

    def question(self, qid: str, user: str, text: str, profile: list[dict]) -> dict:
        return {"id": qid, "user_id": user, "input": self.template.format(text=text), "profile": profile}


def write_split(folder: Path, split: str, records: list[dict], golds: dict[str, str]) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{split}_questions.json").write_text(json.dumps(records))
    outputs = {"task": "LaMP_2", "golds": [{"id": r["id"], "output": golds[r["id"]]} for r in records]}
    (folder / f"{split}_outputs.json").write_text(json.dumps(outputs))


def copy_data(world: World, dest: Path, questions: int) -> None:
    """The generator's data: the gold is the tag of both profile items (see the module docstring)."""
    rng, day = world.rng, datetime.date(2015, 1, 1)
    for split, n in (("train", questions), ("dev", questions // 10), ("test", questions // 10)):
        records, golds = [], {}
        for i in range(n):
            tag, uid = rng.choice(TAGS), f"c{split}{i:05d}"
            items = [
                {
                    "id": f"{uid}-{j}",
                    "description": world.text(rng.randrange(len(world.topics))),
                    "tag": tag,
                    "date": (day + datetime.timedelta(days=j)).isoformat(),
                }
                for j in range(2)
            ]
            text = world.text(rng.randrange(len(world.topics)))
            records.append(world.question(f"{uid}q", uid, f"{CUE} {text}" if rng.random() < 0.5 else text, items))
            golds[records[-1]["id"]] = tag
        write_split(dest / "LaMP_2", split, records, golds)


def planted_data(
    world: World, dest: Path, users: int, questions: int, recent: int, shares: tuple = (0.6, 0.2), mark: bool = True
) -> dict[str, str]:
    """The methods' data (see the module docstring); returns each test question's gold. `shares`:
    the train and dev fractions of the users (test: the rest); `mark`: recent users' newest items
    carry `MARK`."""
    rng, day = world.rng, datetime.date(2015, 1, 1)
    shared = [rng.choice(TAGS) for _ in world.topics]
    splits: dict[str, tuple[list[dict], dict[str, str]]] = {s: ([], {}) for s in ("train", "dev", "test")}
    for u in range(users):
        kind = "r" if u % 2 == 0 else "t"  # recent / topical: the user id names the kind
        uid = f"{kind}{u:03d}"
        mapping = [tag if rng.random() < 0.5 else rng.choice(TAGS) for tag in shared]
        special = rng.choice([t for t in TAGS if t not in mapping])
        size = rng.randint(10, 12)
        profile = []
        for j in range(size):
            topic = rng.randrange(len(world.topics))
            newest = kind == "r" and j >= size - recent
            tag = special if newest else mapping[topic]
            date = (day + datetime.timedelta(days=3 * j)).isoformat()
            text = world.text(topic)
            if newest and mark:
                words = text.split()
                words.insert(world.rng.randrange(len(words) + 1), MARK)
                text = " ".join(words)
            profile.append({"id": f"{uid}-{j:02d}", "description": text, "tag": tag, "date": date})
        split = "train" if u < shares[0] * users else "dev" if u < sum(shares) * users else "test"
        for q in range(questions):
            topic = rng.randrange(len(world.topics))
            text = f"{CUE} {world.text(topic)}" if kind == "r" else world.text(topic)
            record = world.question(f"{uid}q{q}", uid, text, profile)
            splits[split][0].append(record)
            splits[split][1][record["id"]] = special if kind == "r" else mapping[topic]
    for split, (records, golds) in splits.items():
        write_split(dest / "LaMP_2", split, records, golds)
    test, golds = splits["test"]
    for name, keep in (("right", True), ("wrong", False)):  # the generator check's test splits
        kept = [{**r, "profile": [i for i in r["profile"] if (i["tag"] == golds[r["id"]]) == keep]} for r in test]
        for split in ("dev", "test"):  # `test` reads the dev split's files too
            write_split(dest.parent / f"check_{name}" / "LaMP_2", split, [r for r in kept if r["profile"]], golds)
    return golds


CONFIG = """\
seed_everything: {seed}
trainer: {{accelerator: cpu, devices: 1, max_epochs: {epochs}, enable_progress_bar: false,
          enable_model_summary: false, log_every_n_steps: 10}}
model: {{model_name_or_path: {t5}, lr: {lr}, warmup_ratio: 0.05, num_beams: 1, max_new_tokens: 6}}
data:
  task: LaMP_2
  data_dir: {work}/planted
  cache_dir: {work}/cache
  tokenizer: {t5}
  k: 1
  max_input_length: 256
  max_target_length: 6
  batch_size: 32
  val_split: dev
  test_split: test
  retrieval: {{retriever: bm25, encoder: {minilm}, encoder_max_length: 64, k_max: 12}}
"""


def lamp(command: str, log: Path) -> str:
    """Run one `lamp-pl` command line in this process (logged to `log`); its standard output."""
    from lamp_pl.cli import main

    with log.open("a") as file:
        file.write(f"lamp-pl {command}\n")
    out, began = io.StringIO(), time.perf_counter()
    with contextlib.redirect_stdout(out):
        code = main(shlex.split(command))
    with log.open("a") as file:
        file.write(f"  ({time.perf_counter() - began:.0f} s)\n")
    if code not in (0, None):
        raise SystemExit(f"lamp-pl {command}: exit status {code}")
    return out.getvalue()


def printed_json(text: str) -> dict:
    """The JSON object a command printed."""
    return json.JSONDecoder().raw_decode(text[text.index("{") :])[0]


def printed_path(text: str) -> Path:
    """The path a command printed (its last line)."""
    return Path(text.strip().splitlines()[-1])


def predictions(root: Path) -> dict[str, str]:
    """The newest `predictions_test.json` under a run folder, as question id -> output."""
    path = max(root.rglob("predictions_test.json"), key=lambda p: p.stat().st_mtime)
    return {p["id"]: p["output"] for p in json.loads(path.read_text())["golds"]}


def utilities(path: Path, names) -> dict[str, dict[str, float]]:
    """Per retriever of a `score-retrievers` file: question id -> its test metric."""
    records = [json.loads(line) for line in path.read_text().splitlines()]
    return {n: {r["id"]: float(r["utilities"][n]["metric"]) for r in records} for n in names}


def generator(args) -> tuple[Path, Path]:
    """The tiny T5 folder and the fitted copy generator's checkpoint (all seeds share them: the
    generator is fitted once, on the copy data)."""
    from lamp_pl.cli.ropg_kd import best_checkpoint
    from lamp_pl.demo.models import build_tiny_t5

    settings = f"{args.copy_questions}q_{args.d_model}d_{args.epochs}e_{args.lr}"
    work, world = Path(args.workdir).resolve().parent / f"generator_{settings}", World(0)
    corpus = [world.template.format(text=CUE), 'the tag for the movie: "" is ""', *TAGS, " ".join(world.filler)]
    corpus = corpus * 20 + [" ".join(words) for words in world.topics] * 20
    t5 = build_tiny_t5(work / "t5", corpus, vocab_size=600, d_model=args.d_model, seed=0)
    if not list((work / "run").rglob("last*.ckpt")):
        copy_data(world, work / "copy", args.copy_questions)
        config = work / "config.yaml"
        config.write_text(CONFIG.format(seed=0, epochs=args.epochs, lr=args.lr, t5=t5, work=work, minilm=t5))
        lamp(
            f"fit --config {config} --data.data_dir {work}/copy --data.retrieval.retriever random "
            f"--trainer.default_root_dir {work}/run",
            work / "commands.txt",
        )
    return t5, best_checkpoint(work / "run")


def run_seed(args, seed: int, t5: Path, ckpt: Path) -> dict[str, dict[str, float]]:
    """Every row of the table for one seed: question id -> 1.0 (right) / 0.0, per row."""
    from lamp_pl.demo.models import minilm_path

    encoder = minilm_path()  # the pool's dense retriever, the selectors' and the ROPG start
    work = Path(args.workdir).resolve() / f"seed{seed}"
    shares = (args.train_share, args.dev_share)
    golds = planted_data(World(seed), work / "planted", args.users, args.questions, args.recent, shares, args.mark)
    config = work / "config.yaml"
    config.write_text(CONFIG.format(seed=seed, epochs=args.epochs, lr=args.lr, t5=t5, work=work, minilm=encoder))
    log, rows = work / "commands.txt", {}
    log.write_text("")

    def run(command: str) -> str:
        return lamp(command, log)

    cfg = f"--config {config} --ckpt_path {ckpt}"

    def right(outputs: dict[str, str]) -> dict[str, float]:
        return {qid: float(outputs[qid].strip() == gold) for qid, gold in golds.items() if qid in outputs}

    def test(name: str, options: str) -> None:
        root = work / "test" / re.sub(r"[^a-z0-9]+", "_", name.lower())
        run(f"test {cfg} --trainer.default_root_dir {root} {options}")
        rows[name] = right(predictions(root))

    for name in ("right", "wrong"):
        test(
            f"check: a planted {name} item (k=1)",
            f"--data.data_dir {work}/check_{name} --data.retrieval.retriever random",
        )

    def scored(name: str, pool: dict, split: str) -> Path:
        (work / f"{name}.json").write_text(json.dumps(pool))
        return printed_path(run(f"score-retrievers {cfg} --pool {work}/{name}.json --split {split} --progress false"))

    train, test_path = scored("pool", POOL, "train"), scored("pool", POOL, "test")
    rows.update(utilities(test_path, POOL))
    rows["oracle (best of the 4 per question)"] = {q: max(rows[n][q] for n in POOL) for q in rows["none"]}
    shares: dict[str, float] = {}
    for mode in ("Pre", "Post"):
        out = work / f"rspg_{mode.lower()}"
        run(
            f"fit-selector --train {train} --encoder {encoder} --out_dir {out} --mode {mode.lower()} "
            f"--temperature {args.selector_temperature} --max_epochs {args.selector_epochs} --lr {args.selector_lr} "
            f"--max_length 64 --reads query --seed {seed}"
        )
        report = printed_json(
            run(
                f"select {cfg} --selector {out}/selector.ckpt "
                f"--pool {work}/pool.json --out {out}/choices.json --utilities {test_path}"
            )
        )
        shares.update({f"RSPG-{mode} {n}": share for n, share in report["chosen_share"].items()})
        test(f"RSPG-{mode}", f"--data.retrieval.retriever selected --data.retrieval.selector {out}/choices.json")

    items = printed_path(
        run(
            f"score-items {cfg} --candidates 12 --split train --data.retrieval.retriever contriever "
            f"--data.retrieval.encoder {encoder} --progress false"
        )
    )
    learned = {}
    for method, command in (("KD", "fit-retriever"), ("RL", f"fit-retriever-rl --k 1 --samples {args.rl_samples}")):
        trained = printed_path(
            run(
                f"{command} --train_utilities {items} --encoder {encoder} --out_dir {work}/ropg_{method.lower()} "
                f"--max_epochs {args.retriever_epochs} --lr {args.retriever_lr} --batch_size 8 --max_length 64 "
                "--group_by_user true "
                f"--temperature {args.retriever_temperature} --utility_temperature {args.utility_temperature} "
                f"{'--use_metric true ' if args.use_metric else ''}"
                f"--seed {seed} --trainer '{{\"enable_progress_bar\": false}}'"
            )
        )
        learned[f"ROPG-{method} (from MiniLM)"] = {"retriever": "contriever", "encoder": str(trained)}
    rows.update(utilities(scored("learned", learned, "test"), learned))
    if not args.peft:
        rows["_shares"] = shares
        return rows

    k0 = "--data.k 0 --data.retrieval.retriever none"
    peft = f"{cfg} --epochs {args.user_epochs} --lr {args.user_lr} --r 8 --alpha 16 --seed {seed}"
    task = printed_json(run(f"fit-task-adapter {peft} --out {work}/peft_task {k0}"))["adapter"]
    stages = {
        "task adapter only": f"--init_adapter {task} --min_profile 100000",
        "one-stage": "",
        "two-stage": f"--init_adapter {task}",
    }
    for name, extra in stages.items():
        out = work / ("users_" + re.sub(r"[^a-z0-9]+", "_", name))
        run(f"fit-users {peft} --out {out} --split test {extra} {k0}")
        for label, data in (("k=0", k0), ("bm25, k=1", "--data.retrieval.retriever bm25")):
            folder = out / re.sub(r"[^a-z0-9]+", "_", label)
            run(f"test-users {cfg} --user_adapters {out} --out {folder} {data}")
            rows[f"per-user LoRA, {name} ({label})"] = right(predictions(folder))
    rows["_shares"] = shares
    return rows


def kinds(row: dict[str, float]) -> list[float]:
    """A row's accuracy overall, on topical users and on recent users."""
    topical = [v for q, v in row.items() if q.startswith("t")]
    recent = [v for q, v in row.items() if q.startswith("r")]
    return [statistics.mean(v) if v else float("nan") for v in (list(row.values()), topical, recent)]


SIZES = {
    "tiny": {"users": 10, "seeds": [0], "selector_epochs": 1, "retriever_epochs": 1, "copy_questions": 300},
    "small": {"users": 100, "seeds": [0, 1]},
    "full": {"users": 200, "seeds": [0, 1, 2, 3, 4], "train_share": 0.4, "dev_share": 0.1},
}
"""``--size`` presets: tiny checks that every command runs (its figures mean nothing), small is
the few-minutes configuration, full the one the docs report; explicit options override them."""

COMPARISONS = {
    "RSPG-Pre": "best single",
    "RSPG-Post": "best single",
    "oracle (best of the 4 per question)": "best single",
    "ROPG-KD (from MiniLM)": "contriever",
    "ROPG-RL (from MiniLM)": "contriever",
}
"""Each method's baseline row: the best single retriever of the pool (by mean over all seeds'
questions) for the selectors, the untrained MiniLM it starts from (the pool's `contriever`) for
ROPG."""


def pooled(per_seed: dict[int, dict], name: str) -> dict[str, float]:
    """A row's question scores over every seed (seeds draw different questions: ``<seed>:<id>``)."""
    return {f"{seed}:{q}": v for seed, rows in per_seed.items() for q, v in rows[name].items()}


def bootstrap_rows(per_seed: dict[int, dict]) -> list[str]:
    """Markdown rows: each method against its baseline, paired on the same questions, with the
    grid's bootstrap (`lamp_pl.studygrid.stats.paired_bootstrap`), and for RSPG the share of
    the best-single-to-oracle gap it closes."""
    from lamp_pl.studygrid.stats import paired_bootstrap

    singles = {n: pooled(per_seed, n) for n in POOL}
    best = max(singles, key=lambda n: statistics.mean(singles[n].values()))
    oracle = pooled(per_seed, "oracle (best of the 4 per question)")
    gap = statistics.mean(oracle.values()) - statistics.mean(singles[best].values())
    lines = [
        f"| method | baseline | method - baseline (95% paired bootstrap) | questions | share of the {best}-to-oracle gap |",
        "|---|---|---|---|---|",
    ]
    for name, against in COMPARISONS.items():
        if name not in per_seed[next(iter(per_seed))]:
            continue
        base = best if against == "best single" else against
        stats = paired_bootstrap(singles[base], pooled(per_seed, name), resamples=2000)
        closed = f"{stats['diff'] / gap:.2f}" if against == "best single" and gap > 0 else ""
        lines.append(
            f"| {name} | {base} | {stats['diff']:+.3f} ({stats['ci_low']:+.3f} to {stats['ci_high']:+.3f}) "
            f"| {stats['questions']} | {closed} |"
        )
    return lines


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", choices=sorted(SIZES), default="small", help="a preset (see SIZES)")
    parser.add_argument("--seeds", type=int, nargs="+", default=None)
    parser.add_argument("--users", type=int, default=None, help="planted users (60/20/20 train/dev/test)")
    parser.add_argument("--questions", type=int, default=4, help="questions per planted user")
    parser.add_argument("--recent", type=int, default=2, help="newest items carrying a recent user's tag")
    parser.add_argument(
        "--mark",
        action=argparse.BooleanOptionalAction,
        default=True,
        help=f"recent users' newest items carry the word {MARK!r} (learnable by ROPG; --no-mark: the text holds no sign)",
    )
    parser.add_argument("--train_share", type=float, default=0.6, help="share of the users in train")
    parser.add_argument("--dev_share", type=float, default=0.2, help="share of the users in dev (test: the rest)")
    parser.add_argument("--copy_questions", type=int, default=1500, help="generator training questions")
    parser.add_argument("--d_model", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=5, help="generator epochs")
    parser.add_argument("--lr", type=float, default=5e-3, help="generator learning rate")
    parser.add_argument("--retriever_epochs", type=int, default=3)
    parser.add_argument("--retriever_lr", type=float, default=5e-5)
    parser.add_argument("--retriever_temperature", type=float, default=1.0)
    parser.add_argument("--utility_temperature", type=float, default=1.0)
    parser.add_argument("--use_metric", action="store_true", help="ROPG distils/rewards the metric, not the likelihood")
    parser.add_argument("--rl_samples", type=int, default=4)
    parser.add_argument("--selector_epochs", type=int, default=5)
    parser.add_argument("--selector_lr", type=float, default=1e-4)
    parser.add_argument("--selector_temperature", type=float, default=0.1)
    parser.add_argument("--peft", action="store_true", help="also the per-user LoRA rows (slow)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workdir", default=None, help="default runs/methods_proof/<size>")
    given = parser.parse_args(argv)
    defaults = vars(parser.parse_args([]))
    preset = SIZES[given.size]
    for key, value in preset.items():  # a preset fills what the command line left at its default
        if getattr(given, key) in (None, defaults[key]):
            setattr(given, key, value)
    args = given
    args.workdir = args.workdir or f"runs/methods_proof/{args.size}"
    import torch

    torch.set_num_threads(args.threads)
    start, per_seed = time.perf_counter(), {}
    t5, ckpt = generator(args)
    print(f"generator: {time.perf_counter() - start:.0f} s", flush=True)
    for seed in args.seeds:
        began = time.perf_counter()
        done = Path(args.workdir) / f"seed{seed}" / "rows.json"  # a rerun reuses finished seeds
        if not done.is_file():
            done.write_text(json.dumps(run_seed(args, seed, t5, ckpt)))
        per_seed[seed] = json.loads(done.read_text())
        print(f"seed {seed}: {time.perf_counter() - began:.0f} s", flush=True)
    seconds = round(time.perf_counter() - start, 1)
    names = [n for n in per_seed[args.seeds[0]] if n != "_shares"]
    table = {n: [kinds(per_seed[s][n]) for s in args.seeds] for n in names}
    print(
        f"\n| row (test accuracy; mean over {len(args.seeds)} seeds, min - max) | all | topical users | recent users |"
    )
    print("|---|---|---|---|")
    for name, values in table.items():
        cells = [f"{statistics.mean(c):.2f} ({min(c):.2f} - {max(c):.2f})" for c in zip(*values)]
        print(f"| {name} | " + " | ".join(cells) + " |")
    print()
    print("\n".join(bootstrap_rows(per_seed)))
    shares = {
        k: statistics.mean(per_seed[s]["_shares"][k] for s in args.seeds) for k in per_seed[args.seeds[0]]["_shares"]
    }
    print("\nchosen share (mean over seeds): " + ", ".join(f"{k} {v:.2f}" for k, v in shares.items()))
    questions = len(per_seed[args.seeds[0]]["none"])
    print(f"\n{questions} test questions per seed; {seconds} s for {len(args.seeds)} seeds")
    Path(args.workdir, "table.json").write_text(
        json.dumps({"table": table, "shares": shares, "seconds": seconds, "args": vars(args)}, indent=1)
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
