"""Test-time generation with batches sorted by prompt length against batches in file order.

    python bench/generation.py                       # demo-shaped LaMP-2, the demo's trained T5, beams 4, 128 tokens
    python bench/generation.py --users 60 --fit-epochs 3   # a smaller split and a shorter fit, for a quick look
    python bench/generation.py --ckpt runs/demo/.../last.ckpt   # a checkpoint of the demo config instead
    python bench/generation.py --fit-epochs 0        # the randomly initialised T5 (every output 128 tokens)
    python bench/generation.py --max-input-length 512   # the official prompt budget: prompts of varied length
    python bench/generation.py --max-input-length 512 --text-words 5 80 --fit-epochs 3   # texts of 5-80 words

It prepares the offline demo (`lamp_pl.cli.demo.demo`: tokenizer and MiniLM encoder) in a work
folder and writes the demo's synthetic LaMP-2 data with `--users` users. Unless `--ckpt` names a
checkpoint, it first trains the demo model (`lamp-pl fit --config demo`, in a
subprocess, `--fit-epochs` epochs): a trained model ends its outputs early, so the rows of a batch
finish at different steps and padding matters; the random model runs every output to the full
`max_new_tokens` whatever the batching. Then, in this process, it runs `Trainer.test` of the demo
config on the test split with that checkpoint (`ckpt_path`, as `lamp-pl test --ckpt_path` loads it,
but with the beams and `max_new_tokens` given here: the official 4 and 128), once per way of forming
the batches (it also prints the test prompts' token lengths: the demo config's budget of 96 tokens
is filled by every prompt, so there is nothing to sort; `--max-input-length 512`, the official
budget, leaves the prompts their own lengths; `--text-words MIN MAX` draws each synthetic text's
length, as real LaMP texts vary, where the demo's are all 10 words):

- file order: `data.eval_order: file`, `--eval-batch-size` rows per batch;
- sorted by length: `data.eval_order: length`, the same count;
- sorted, token-bounded: `data.eval_order: length` with `data.eval_max_tokens` = the most padded
  prompt tokens a file-order batch may hold (`--eval-batch-size` x the config's
  `max_input_length`, so no batch needs more memory than file order's worst), and up to
  `--token-batch-cap` rows.

After one warm-up test (two batches, which also builds the caches), the variants run in turn
`--repeats` times; the table gives each one's fastest wall and CPU seconds (the process's user +
system time: the figure to trust on a busy machine), its number of batches, the speed-up over file
order, and whether its predictions file is byte-identical to file order's.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
CONFIG = "demo"  # the shipped config, by name


def fit_demo(work: Path, data: list[str], epochs: int | None) -> Path:
    """Train the demo config on the `data` overrides in a subprocess (in `work`); return its `last.ckpt`."""
    runs = work / "runs" / "fit"
    shutil.rmtree(runs, ignore_errors=True)
    entry = "import sys; from lamp_pl.cli import main; sys.exit(main(sys.argv[1:]))"  # `lamp-pl` of this checkout
    command = [sys.executable, "-c", entry, "fit", "--config", str(CONFIG), *data]
    command += ["--trainer.default_root_dir", str(runs), "--trainer.enable_progress_bar", "false"]
    if epochs is not None:
        command += ["--trainer.max_epochs", str(epochs)]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TOKENIZERS_PARALLELISM": "false"}
    start = time.perf_counter()
    done = subprocess.run(command, cwd=work, env=env, capture_output=True, text=True)
    if done.returncode:
        raise SystemExit(f"{' '.join(command)} failed:\n{done.stderr[-4000:]}")
    (last,) = runs.rglob("last.ckpt")
    print(f"fitted the demo model in {time.perf_counter() - start:.0f} s: {last}", flush=True)
    return last


def run_test(work: Path, name: str, overrides: list[str], ckpt: Path | None, limit: int | None = None) -> dict:
    """Wall and CPU seconds, batch count and predictions file of one `Trainer.test` in this process."""
    import lightning as L

    from lamp_pl.cli.config import data_and_model

    runs = work / "runs" / name
    shutil.rmtree(runs, ignore_errors=True)
    data, model = data_and_model([CONFIG], overrides)
    L.seed_everything(0, verbose=False)  # the same random weights in every run without a checkpoint
    trainer = L.Trainer(
        accelerator="cpu",
        devices=1,
        default_root_dir=str(runs),
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        limit_test_batches=limit,
    )
    wall, cpu = time.perf_counter(), time.process_time()
    trainer.test(model, datamodule=data, ckpt_path=str(ckpt) if ckpt else None, weights_only=True, verbose=False)
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    (path,) = runs.rglob("predictions_test.json")
    batches = len(data.loader(data.test_split))
    return {"wall": wall, "cpu": cpu, "batches": batches, "predictions": path.read_bytes()}


def prompt_lengths(overrides: list[str]) -> str:
    """Min / median / max tokenized prompt length of the test split (what sorting has to work with)."""
    import numpy as np

    from lamp_pl.cli.config import datamodule_from_config
    from lamp_pl.pipeline.batching import prompt_lengths as lengths_of

    data = datamodule_from_config([CONFIG], overrides)
    data.load("test")
    values = lengths_of(data.datasets[data.test_split])
    return f"min {values.min()}, median {int(np.median(values))}, max {values.max()} over {len(values)} questions"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--users", type=int, default=250, help="synthetic users (the demo's 250 by default)")
    parser.add_argument("--num-beams", type=int, default=4, help="beams (4: the official generation_num_beams)")
    parser.add_argument("--max-new-tokens", type=int, default=128, help="128: the official generation_max_length")
    parser.add_argument("--eval-batch-size", type=int, default=32, help="rows per batch (the demo's batch_size)")
    parser.add_argument(
        "--max-input-length", type=int, default=96, help="prompt budget (the demo config's 96; the official 512)"
    )
    parser.add_argument(
        "--text-words",
        type=int,
        nargs=2,
        metavar=("MIN", "MAX"),
        help="words per synthetic text (default: the demo's 10)",
    )
    parser.add_argument("--max-tokens", type=int, help="token bound of the third variant (default: count x budget)")
    parser.add_argument("--token-batch-cap", type=int, default=1024, help="most rows of a token-bounded batch")
    parser.add_argument("--ckpt", type=Path, help="a checkpoint of the demo config (default: fit one first)")
    parser.add_argument("--fit-epochs", type=int, help="epochs of that fit (the config's 10); 0: no fit, random T5")
    parser.add_argument("--repeats", type=int, default=1, help="runs of each variant, in turn; the fastest counts")
    parser.add_argument("--work", type=Path, help="working folder (default: a temporary one, removed)")
    args = parser.parse_args(argv)
    from lamp_pl.cli.demo import demo

    work = (args.work or Path(tempfile.mkdtemp(prefix="lamp-generation-"))).resolve()
    work.mkdir(parents=True, exist_ok=True)
    here = Path.cwd()
    try:
        os.chdir(work)  # the demo config names its folders relative to the working directory
        demo(work / "demo_data")
        ckpt = args.ckpt.resolve() if args.ckpt else None
        data = ["--data.synthetic.users", str(args.users), "--data.max_input_length", str(args.max_input_length)]
        if args.text_words:
            data += ["--data.synthetic.text_words", f"[{args.text_words[0]}, {args.text_words[1]}]"]
        if ckpt is None and args.fit_epochs != 0:
            ckpt = fit_demo(work, data, args.fit_epochs)
        common = [*data, "--model.num_beams", str(args.num_beams), "--model.max_new_tokens", str(args.max_new_tokens)]
        count = ["--data.eval_batch_size", str(args.eval_batch_size)]
        max_tokens = args.max_tokens or args.eval_batch_size * args.max_input_length
        variants = {
            "file order": [*common, *count, "--data.eval_order", "file"],
            "sorted by length": [*common, *count, "--data.eval_order", "length"],
            f"sorted, <= {max_tokens} tokens": [
                *common,
                *["--data.eval_order", "length", "--data.eval_batch_size", str(args.token_batch_cap)],
                *["--data.eval_max_tokens", str(max_tokens)],
            ],
        }
        run_test(work, "warm-up", variants["file order"], ckpt, limit=2)
        best: dict[str, dict] = {}
        for repeat in range(args.repeats):
            for name, overrides in variants.items():
                result = run_test(work, f"{name}-{repeat}".replace(" ", "_"), overrides, ckpt)
                print(f"{name}: {result['wall']:.1f} s wall, {result['cpu']:.1f} s CPU", flush=True)
                kept = best.setdefault(name, result)
                kept["wall"], kept["cpu"] = min(kept["wall"], result["wall"]), min(kept["cpu"], result["cpu"])
                kept["identical"] = kept.get("identical", True) and result["predictions"] == kept["predictions"]
        model = f"checkpoint {ckpt}" if ckpt else "random T5 (no checkpoint)"
        lengths = prompt_lengths(data)
        print(f"\n{os.cpu_count()} CPUs; {model}; beams {args.num_beams}, max_new_tokens {args.max_new_tokens}")
        words = f"{args.text_words[0]}-{args.text_words[1]}" if args.text_words else "10 (the demo's)"
        print(f"prompt tokens (budget {args.max_input_length}, texts of {words} words): {lengths}\n")
        print("| batches | count | wall s | CPU s | speed-up (wall / CPU) | predictions as file order |")
        print("|---|---:|---:|---:|---:|---|")
        base = best["file order"]
        for name, result in best.items():
            same = result["predictions"] == base["predictions"] and result["identical"]
            speed = f"{base['wall'] / result['wall']:.2f}x / {base['cpu'] / result['cpu']:.2f}x"
            print(
                f"| {name} | {result['batches']} | {result['wall']:.1f} | {result['cpu']:.1f} | {speed} | "
                f"{'identical' if same else 'DIFFERENT'} |"
            )
        print("\ntarget: test-time generation >= 1.5x faster than file order, identical predictions")
    finally:
        os.chdir(here)
        if not args.work:
            shutil.rmtree(work, ignore_errors=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
