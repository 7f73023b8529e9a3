"""What a lamp_pl training step runs that a plain PyTorch step does not: torch.profiler on both.

Not a test. `bench/train_step.py` compares the two steps' wall times, which on a shared 2-core
machine move by 15-30% from one round to the next; this counts instead. Both loops train the same
tiny Llama on the same LaMP batches as `bench/train_step.py` (lamp_pl's `LaMPModel` under a bare
Lightning `Trainer`, and the plain loop: forward, backward, AdamW, `zero_grad`), each profiled over
the same steps after warm-up. Printed: per step, the number of ATen operator calls and their summed
self CPU time in each loop, the time outside any operator (Python: the model's own Python,
Lightning's loop and hooks, lamp_pl's batch handling), and the operators whose calls per step
differ between the two, with their time.
Counts are exact; times carry the profiler's own cost and the machine's noise.

    python bench/step_ops.py                 # full fine-tuning
    python bench/step_ops.py --lora          # LoRA (r 16)
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")
sys.path.insert(0, str(Path(__file__).resolve().parent))

import torch
import train_step  # noqa: E402  (this folder's benchmark: its batches, model and bare Trainer)
from torch.profiler import ProfilerActivity, profile


def _ops(prof: profile, steps: int) -> dict[str, tuple[float, float]]:
    """ATen operator name -> (calls per step, self CPU ms per step). Only `aten::` events: the
    profiler's named ranges (`Optimizer.step#AdamW.step`, ...) would count as their own time the
    Python that runs inside them (in Lightning's loop, the whole closure: forward and backward)."""
    return {
        event.key: (event.count / steps, event.self_cpu_time_total / 1000 / steps)
        for event in prof.key_averages()
        if event.key.startswith("aten::")
    }


def profile_plain(data: list[dict], lora: bool, warmup: int) -> tuple[dict, float]:
    holder = train_step.build_model("small", lora)
    family, network = holder.family, holder.model
    network.train()
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)

    def step(batch: dict) -> None:
        loss = network(**family.training_sequences(batch)).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for batch in data[:warmup]:
        step(batch)
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        start = time.perf_counter()
        for batch in data[warmup:]:
            step(batch)
        wall = time.perf_counter() - start
    return _ops(prof, len(data) - warmup), 1000 * wall / (len(data) - warmup)


def profile_lamp(data: list[dict], lora: bool, warmup: int) -> tuple[dict, float]:
    import lightning as L

    state: dict = {}

    class Window(L.Callback):
        """The profiler over the same steps as the plain loop's: from batch `warmup` to the end."""

        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if batch_idx == warmup:
                state["prof"] = profile(activities=[ProfilerActivity.CPU])
                state["prof"].__enter__()
                state["start"] = time.perf_counter()

        def on_train_end(self, trainer, module):
            state["wall"] = time.perf_counter() - state["start"]
            state["prof"].__exit__(None, None, None)

    train_step.fit_on_batches(train_step.build_model("small", lora), data, [Window()])
    steps = len(data) - warmup
    return _ops(state["prof"], steps), 1000 * state["wall"] / steps


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--lora", action="store_true", help="LoRA (r 16) instead of full fine-tuning")
    parser.add_argument("--steps", type=int, default=40)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--most", type=int, default=15, help="rows of differing operators shown")
    a = parser.parse_args(argv)
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        data = train_step.batches(Path(tmp), "small", a.steps, a.batch_size)
        plain, plain_ms = profile_plain(data, a.lora, a.warmup)
        ours, ours_ms = profile_lamp(data, a.lora, a.warmup)
    rows = []
    for name, ops, wall in (("plain", plain, plain_ms), ("lamp_pl", ours, ours_ms)):
        calls, op_ms = _totals(ops)
        rows.append(f"| {name} | {calls:.0f} | {op_ms:.2f} | {wall:.2f} | {wall - op_ms:.2f} |")
    print(f"{'LoRA' if a.lora else 'full fine-tuning'}, {a.steps - a.warmup} steps profiled after {a.warmup}")
    print("\n| loop | operator calls a step | operators' self CPU ms a step | wall ms a step | outside operators, ms |")
    print("|---|---:|---:|---:|---:|")
    print("\n".join(rows))
    differ = []
    for name in set(plain) | set(ours):
        (pc, pt), (oc, ot) = plain.get(name, (0.0, 0.0)), ours.get(name, (0.0, 0.0))
        if abs(oc - pc) >= 0.5:
            differ.append((ot - pt, name, pc, oc, pt, ot))
    differ.sort(reverse=True)
    print("\n| operator | calls a step, plain | lamp_pl | self CPU ms a step, plain | lamp_pl |")
    print("|---|---:|---:|---:|---:|")
    for _, name, pc, oc, pt, ot in differ[: a.most]:
        print(f"| `{name}` | {pc:.1f} | {oc:.1f} | {pt:.3f} | {ot:.3f} |")
    extra = sum(d[0] for d in differ)
    print(f"\noperators called a different number of times: {len(differ)}, {extra:+.2f} ms a step in lamp_pl")
    return 0


def _totals(ops: dict[str, tuple[float, float]]) -> tuple[float, float]:
    return sum(c for c, _ in ops.values()), sum(t for _, t in ops.values())


if __name__ == "__main__":
    raise SystemExit(main())
