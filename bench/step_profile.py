"""Where a `fit` step's time goes: lamp_pl's training loop broken into its parts, per step.

Not a test. The same batches and model as `bench/train_step.py` (synthetic LaMP-2, a tiny random
Llama, causal family; or `--family seq2seq`, a tiny random T5), trained by a Lightning `Trainer`
as `lamp-pl fit` does, with timers wrapped around the parts of each iteration:

* data: the data loader's next batch (collate) and the move of the batch to the device;
* sequences: the family turning a batch into the model's inputs (causal: prompt + target ids);
* forward, backward: the network's own passes;
* update: the optimizer's step (AdamW) and the learning-rate scheduler, closure excluded;
* log: `self.log("train/loss", ...)`;
* the rest: what the iteration took beyond those (Lightning's loop, hooks, progress tracking).

    python bench/step_profile.py                       # causal, full fine-tuning
    python bench/step_profile.py --family seq2seq      # the T5 family (no sequence building)

Prints the median milliseconds per step of each part (after warm-up steps) and their share.
"""

from __future__ import annotations

import argparse
import functools
import statistics
import sys
import time
from collections import defaultdict
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch  # noqa: E402
import train_step  # noqa: E402

T5_SHAPE = {"d_model": 128, "d_ff": 256, "num_layers": 2, "num_decoder_layers": 2, "num_heads": 4, "d_kv": 32}


class Clock:
    """Seconds spent in each wrapped part, per training iteration."""

    def __init__(self) -> None:
        self.parts: dict[str, float] = defaultdict(float)
        self.steps: list[dict[str, float]] = []
        self.depth: dict[str, int] = defaultdict(int)

    def wrap(self, owner: object, name: str, part: str) -> None:
        original = getattr(owner, name)

        @functools.wraps(original)
        def timed(*args, **kwargs):
            self.depth[part] += 1
            began = time.perf_counter()
            try:
                return original(*args, **kwargs)
            finally:
                self.depth[part] -= 1
                if not self.depth[part]:  # a part that calls itself counts once
                    self.parts[part] += time.perf_counter() - began

        setattr(owner, name, timed)

    def close_step(self, total: float) -> None:
        step = dict(self.parts)
        step["total"] = total
        self.steps.append(step)
        self.parts = defaultdict(float)


def build(family: str):
    if family == "causal":
        return train_step.build_model("small", lora=False)
    from lamp_pl.lightning.module import LaMPModel

    model = LaMPModel(
        model_name_or_path="random",
        family="seq2seq",
        task="LaMP_2",
        tokenizer=train_step.synthetic_tokenizer(),
        random_init={"model_type": "t5", **T5_SHAPE},
        lr=1e-4,
        num_beams=1,
    )
    torch.manual_seed(0)
    model.configure_model()
    return model


def profile(family: str, steps: int, warmup: int, workdir: Path) -> list[tuple[str, float]]:
    """Median ms per step of each part, in the order of a step."""
    import lightning as L

    data = train_step.batches(workdir, "small", steps, 8)
    model = build(family)
    clock = Clock()
    clock.wrap(model.model, "forward", "forward")
    if hasattr(model.family, "training_sequences"):  # the causal family joins prompts and targets
        clock.wrap(model.family, "training_sequences", "sequences")
    clock.wrap(model, "log", "log")
    clock.wrap(model, "backward", "backward")
    clock.wrap(model, "transfer_batch_to_device", "data")
    marks: list[float] = []

    class Iterations(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            now = time.perf_counter()
            if marks:
                clock.close_step(now - marks[-1])
            marks.append(now)

        def on_train_start(self, trainer, module):
            for optimizer in trainer.optimizers:
                clock.wrap(optimizer, "step", "optimizer")
            for config in trainer.lr_scheduler_configs:
                clock.wrap(config.scheduler, "step", "update")

    train_step.fit_on_batches(model, data, [Iterations()], accelerator="cpu")
    rows = []
    for step in clock.steps[warmup:]:
        closure = step.get("sequences", 0) + step.get("forward", 0) + step.get("backward", 0) + step.get("log", 0)
        parts = {
            "data": step.get("data", 0.0),
            "sequences": step.get("sequences", 0.0),
            "forward": step.get("forward", 0.0),
            "backward": step.get("backward", 0.0),
            "update": step.get("optimizer", 0.0) - closure + step.get("update", 0.0),
            "log": step.get("log", 0.0),
        }
        parts["the rest (Lightning)"] = step["total"] - sum(parts.values())
        parts["iteration"] = step["total"]
        rows.append(parts)
    return [(name, 1000 * statistics.median(r[name] for r in rows)) for name in rows[0]]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--family", choices=["causal", "seq2seq"], default="causal")
    parser.add_argument("--steps", type=int, default=80)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--workdir", type=Path, default=Path("/tmp/lamp_pl-step-profile"))
    args = parser.parse_args(argv)
    rows = profile(args.family, args.steps, args.warmup, args.workdir)
    total = dict(rows)["iteration"]
    print(f"| part of a step ({args.family}, median over {args.steps - args.warmup - 1} steps) | ms | share |")
    print("|---|---:|---:|")
    for name, ms in rows:
        print(f"| {name} | {ms:.2f} | {ms / total:.1%} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
