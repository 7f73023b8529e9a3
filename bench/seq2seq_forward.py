"""The seq2seq network alone on lamp_pl's own training batches, in any environment.

Not a test. Separates the network's time from the training loop's when `bench/vs_official.py`
shows a per-sample difference: the same batches (dumped once from a `lamp-pl` config) go through
forward, backward and AdamW in the installed transformers, so the official environment's
transformers 4.27 and lamp_pl's can be timed on identical tensors and weights.

    python bench/seq2seq_forward.py dump runs/vs1/lamp-pl/learn/LaMP_4/config.yaml /tmp/batches.pt
    python bench/seq2seq_forward.py time runs/vs1/models/LaMP_4 /tmp/batches.pt                 # default attention
    python bench/seq2seq_forward.py time runs/vs1/models/LaMP_4 /tmp/batches.pt --attn eager
    ../venv/bin/python bench/seq2seq_forward.py time runs/vs1/models/LaMP_4 /tmp/batches.pt     # the official env

`dump` needs lamp_pl; `time` needs only torch and transformers.
"""

from __future__ import annotations

import argparse
import statistics
import time


def dump(config: str, out: str) -> None:
    """The config's training batches (input ids, mask, labels) as a list of tensor dicts."""
    import torch

    from lamp_pl.cli.config import data_and_model

    data, _ = data_and_model([config])
    data.prepare_data()
    data.setup("fit")
    keep = ("input_ids", "attention_mask", "labels")
    batches = [{k: v for k, v in b.items() if k in keep} for b in data.train_dataloader()]
    torch.save(batches, out)
    print(
        f"{len(batches)} batches: "
        + ", ".join(f"{tuple(b['input_ids'].shape)} -> {tuple(b['labels'].shape)}" for b in batches)
    )


def timed(model_dir: str, batches_file: str, rounds: int, attn: str | None) -> None:
    """Median forward, backward and update milliseconds per batch, after one round of warm-up."""
    import torch
    import transformers
    from transformers import AutoModelForSeq2SeqLM

    torch.manual_seed(0)
    extra = {"attn_implementation": attn} if attn else {}
    model = AutoModelForSeq2SeqLM.from_pretrained(model_dir, **extra).train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
    batches = torch.load(batches_file)
    parts: dict[str, list[float]] = {"forward": [], "backward": [], "update": []}
    for round_ in range(rounds + 1):
        for batch in batches:
            t0 = time.perf_counter()
            loss = model(**batch).loss
            t1 = time.perf_counter()
            loss.backward()
            t2 = time.perf_counter()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            t3 = time.perf_counter()
            if round_:
                parts["forward"].append(t1 - t0)
                parts["backward"].append(t2 - t1)
                parts["update"].append(t3 - t2)
    implementation = getattr(model.config, "_attn_implementation", None) or "eager"
    cells = ", ".join(f"{name} {1000 * statistics.median(v):.1f} ms" for name, v in parts.items())
    print(f"transformers {transformers.__version__}, attention {implementation}: per batch {cells}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="mode", required=True)
    d = sub.add_parser("dump", help="write a config's training batches")
    d.add_argument("config")
    d.add_argument("out")
    t = sub.add_parser("time", help="time the network on dumped batches")
    t.add_argument("model")
    t.add_argument("batches")
    t.add_argument("--rounds", type=int, default=6)
    t.add_argument("--attn", default=None, help="attn_implementation (transformers 5: eager or sdpa)")
    args = parser.parse_args(argv)
    if args.mode == "dump":
        dump(args.config, args.out)
    else:
        timed(args.model, args.batches, args.rounds, args.attn)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
