"""Benchmark: one training step of lamp_pl's LaMPModel (causal family) vs a minimal PyTorch loop.

Both consume the same LaMP batches (synthetic LaMP-2, BM25 top-1 prompts from LaMPDataModule),
the same randomly initialised model, the same LoRA and the same precision; each variant runs in its
own process so peak memory is its own. Printed per variant: tokens/s (prompt + target tokens
trained on), median step time after warm-up (and the mean), peak memory (CUDA max allocated on GPU, max RSS on CPU).

    python bench/train_step.py --shape small              # CPU: a tiny Llama, a smoke figure
    python bench/train_step.py --shape small --interleave 5   # both loops in turn in one process: a steadier ratio
    python bench/train_step.py --shape 0.5b --steps 30    # GPU: Qwen2 shaped like Qwen2.5-0.5B, bf16
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import torch

SHAPES = {
    "small": {
        "model_type": "llama",
        "hidden_size": 128,
        "intermediate_size": 256,
        "num_hidden_layers": 2,
        "num_attention_heads": 4,
        "num_key_value_heads": 4,
        "max_position_embeddings": 512,
    },
    # Qwen2.5-0.5B's shape (random weights): ~0.5B parameters with its 151,936-row vocabulary.
    "0.5b": {
        "model_type": "qwen2",
        "hidden_size": 896,
        "intermediate_size": 4864,
        "num_hidden_layers": 24,
        "num_attention_heads": 14,
        "num_key_value_heads": 2,
        "max_position_embeddings": 4096,
        "vocab_size": 151936,
        "tie_word_embeddings": True,
    },
}
LORA = {"r": 16, "alpha": 32, "dropout": 0.0}


def synthetic_tokenizer() -> str:
    """The demo's tokenizer folder (trained offline on the synthetic LaMP-2 texts; built once)."""
    from lamp_pl.demo.tokenizers import build_synthetic_tokenizer

    return str(build_synthetic_tokenizer(Path(tempfile.gettempdir()) / "lamp_pl-bench-tokenizer"))


def batches(root: Path, shape: str, steps: int, batch_size: int) -> list[dict]:
    """`steps` training batches of LaMPDataModule over a synthetic LaMP-2."""
    from lamp_pl.data.synthetic import SyntheticSpec
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.retrieval import RetrievalConfig

    long = shape != "small"
    data = LaMPDataModule(
        task="LaMP_2",
        data_dir=str(root / "data"),
        cache_dir=str(root / "cache"),
        tokenizer=synthetic_tokenizer(),
        k=4 if long else 1,
        retrieval=RetrievalConfig(retriever="bm25"),
        max_input_length=512 if long else 96,
        max_target_length=16,
        batch_size=batch_size,
        synthetic=SyntheticSpec(users=200, questions_per_user=10, profile_size=(10, 20), text_words=40 if long else 10),
    )
    data.prepare_data()
    data.setup("fit")
    out = []
    while len(out) < steps:
        out.extend(data.train_dataloader())
    return out[:steps]


def build_model(shape: str, lora: bool):
    from lamp_pl.lightning.module import LaMPModel

    model = LaMPModel(
        model_name_or_path="random",
        family="causal",
        task="LaMP_2",
        tokenizer=synthetic_tokenizer(),
        random_init=SHAPES[shape],
        lr=1e-4,
        peft=LORA if lora else None,
        num_beams=1,
    )
    torch.manual_seed(0)
    model.configure_model()
    return model


def run_lamp(data: list[dict], shape: str, lora: bool, precision: str, warmup: int) -> list[float]:
    import lightning as L

    times: list[float] = []

    class StepTimer(L.Callback):
        def on_train_batch_start(self, trainer, module, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            self.start = time.perf_counter()

        def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
            if torch.cuda.is_available():
                torch.cuda.synchronize()
            times.append(time.perf_counter() - self.start)

    fit_on_batches(build_model(shape, lora), data, [StepTimer()], precision=precision)
    return times[warmup:]


def fit_on_batches(model, data: list[dict], callbacks: list, precision: str = "32-true", accelerator: str = "auto"):
    """Train `model` one step per batch of `data` with a bare Lightning `Trainer`: no logger, no
    checkpoints, no progress bar, no validation (nothing but the loop inside a timing)."""
    import lightning as L

    model.configure_callbacks = list  # no checkpointing inside a timing loop
    trainer = L.Trainer(
        accelerator=accelerator,
        devices=1,
        precision=precision,
        max_steps=len(data),
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        callbacks=callbacks,
        limit_val_batches=0,
    )
    trainer.fit(model, train_dataloaders=torch.utils.data.DataLoader(data, batch_size=None, collate_fn=lambda b: b))


def run_plain(data: list[dict], shape: str, lora: bool, precision: str, warmup: int) -> list[float]:
    """The minimal loop: the same network and LoRA, AdamW, autocast, nothing else."""
    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    holder = build_model(shape, lora)
    family, network = holder.family, holder.model.to(device)
    # Sequences are built before timing: the loop times forward, backward and the optimizer only.
    sequences = [{k: v.to(device) for k, v in family.training_sequences(b).items()} for b in data]
    optimizer = torch.optim.AdamW([p for p in network.parameters() if p.requires_grad], lr=1e-4)
    dtype = torch.bfloat16 if precision.startswith("bf16") else None
    times = []
    for seq in sequences:
        if device.type == "cuda":
            torch.cuda.synchronize()
        start = time.perf_counter()
        with torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
            loss = network(**seq).loss
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        if device.type == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - start)
    return times[warmup:]


def one(args: argparse.Namespace) -> dict:
    """One variant in this process: its figures as a dict."""
    torch.manual_seed(0)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(args.workdir or tmp)
        data = batches(root, args.shape, args.steps, args.batch_size)
        holder = build_model(args.shape, False)
        tokens = sum(int(holder.family.training_sequences(b)["attention_mask"].sum()) for b in data[args.warmup :])
        del holder
        if torch.cuda.is_available():
            torch.cuda.reset_peak_memory_stats()
        run = run_lamp if args.impl == "lamp_pl" else run_plain
        times = run(data, args.shape, args.lora, args.precision, args.warmup)
    peak = (
        torch.cuda.max_memory_allocated() / 2**20
        if torch.cuda.is_available()
        else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    )
    step = statistics.median(times)  # the median: a step the OS or allocator delayed does not move it
    return {
        "impl": args.impl,
        "lora": args.lora,
        "shape": args.shape,
        "precision": args.precision,
        "device": torch.cuda.get_device_name() if torch.cuda.is_available() else "cpu",
        "step_ms": round(1000 * step, 2),
        "mean_step_ms": round(1000 * sum(times) / len(times), 2),
        "tokens_per_s": round(tokens / sum(times), 1),
        "peak_mib": round(peak, 1),
        "peak_kind": "cuda_max_allocated" if torch.cuda.is_available() else "max_rss",
    }


def interleaved(args: argparse.Namespace) -> int:
    """Both loops in this one process, in turn, `--interleave` rounds: the ratio of each round's
    medians. Separate processes (the default) give each its own peak memory, but on a shared or
    virtual machine one process can run 20-40% slower than the next for its whole life; in one
    process, alternating, both loops meet the same conditions, so the ratio holds still."""
    torch.manual_seed(0)
    root = Path(args.workdir or tempfile.mkdtemp(prefix="lamp_bench_"))
    data = batches(root, args.shape, args.steps, args.batch_size)
    print(
        f"{'lora':5} {'round':>5} {'plain ms':>9} {'lamp_pl ms':>10} {'ratio':>6}  ({args.shape}, {args.precision}, median step)"
    )
    summary = {}
    for lora in (False, True):
        ratios = []
        for round_ in range(args.interleave):
            order = ("plain", "lamp_pl") if round_ % 2 == 0 else ("lamp_pl", "plain")
            medians = {}
            for impl in order:
                run = run_lamp if impl == "lamp_pl" else run_plain
                medians[impl] = statistics.median(run(data, args.shape, lora, args.precision, args.warmup))
            ratios.append(medians["lamp_pl"] / medians["plain"])
            print(
                f"{lora!s:5} {round_ + 1:5} {1000 * medians['plain']:9.2f} {1000 * medians['lamp_pl']:10.2f} {ratios[-1]:6.3f}"
            )
        summary[lora] = ratios
    for lora, ratios in summary.items():
        print(
            f"lora={lora}: lamp_pl/plain step time, median of {len(ratios)} rounds {statistics.median(ratios):.3f} "
            f"(range {min(ratios):.3f}-{max(ratios):.3f})"
        )
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--shape", choices=sorted(SHAPES), default="small")
    parser.add_argument("--steps", type=int, default=60)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--precision", default=None, help="default: bf16-mixed on GPU, 32-true on CPU")
    parser.add_argument("--workdir", default=None, help="keep data caches here between runs")
    parser.add_argument("--impl", choices=["lamp_pl", "plain"], default=None, help="run one variant (internal)")
    parser.add_argument("--lora", action="store_true", help="with --impl: LoRA on")
    parser.add_argument(
        "--interleave", type=int, default=0, help="R rounds of both loops in one process, in turn (no memory figures)"
    )
    args = parser.parse_args(argv)
    args.precision = args.precision or ("bf16-mixed" if torch.cuda.is_available() else "32-true")
    if args.interleave:
        return interleaved(args)
    if args.impl is not None:
        print(json.dumps(one(args)))
        return 0
    rows = []
    workdir = args.workdir or tempfile.mkdtemp(prefix="lamp_bench_")
    for lora in (False, True):
        for impl in ("plain", "lamp_pl"):
            cmd = [
                sys.executable,
                __file__,
                "--impl",
                impl,
                "--shape",
                args.shape,
                "--steps",
                str(args.steps),
                "--warmup",
                str(args.warmup),
                "--batch_size",
                str(args.batch_size),
                "--precision",
                args.precision,
                "--workdir",
                workdir,
            ] + (["--lora"] if lora else [])
            done = subprocess.run(cmd, check=True, capture_output=True, text=True)
            rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
    print(
        f"{'impl':8} {'lora':5} {'step ms':>9} {'tokens/s':>10} {'peak MiB':>9}  ({rows[0]['device']}, "
        f"{args.shape}, {args.precision})"
    )
    for r in rows:
        print(f"{r['impl']:8} {r['lora']!s:5} {r['step_ms']:9.2f} {r['tokens_per_s']:10.1f} {r['peak_mib']:9.1f}")
    for lora in (False, True):
        plain, lamp = (next(r for r in rows if r["impl"] == i and r["lora"] == lora) for i in ("plain", "lamp_pl"))
        print(
            f"lora={lora}: lamp_pl/plain step time {lamp['step_ms'] / plain['step_ms']:.3f}, "
            f"peak memory {lamp['peak_mib'] / plain['peak_mib']:.3f}"
        )
    print(json.dumps(rows))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
