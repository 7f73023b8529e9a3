"""The DDP contract on 2 CPU processes (gloo): one rank's failure ends every rank, and a 2-rank
fit trains exactly as one device with the global batch."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

from helpers import cli_environment, tiny_args
from lamp_pl.cli import main
from lamp_pl.pipeline.tokenized import TokenizedSplit
from lamp_pl.tasks import get_task

ROOT = Path(__file__).parents[2]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_a_failure_on_rank_0_only_ends_every_rank_with_an_error(tiny_t5, data_root, tmp_path):
    """Both ranks are started from outside (as torchrun does), so Lightning's launcher can not
    kill a waiting rank for us: rank 1 must learn of rank 0's failure through the collective.
    The failure is a prompt template naming a field the items lack, met only while tokenizing,
    which only rank 0 does."""
    shutil.copytree(data_root / "LaMP_2", tmp_path / "data" / "Broken")
    spec = {
        **dataclasses.asdict(get_task("LaMP_2")),
        "name": "Broken",
        "output_task_names": ["LaMP_2"],
        "item_template": 'the tag for "{free}" is "{no_such_field}" ',
    }
    (tmp_path / "broken.json").write_text(json.dumps(spec))
    args = tiny_args(tiny_t5, tmp_path / "data", tmp_path, str(tmp_path / "broken.json"))
    command = [
        sys.executable,
        str(ROOT / "cli.py"),
        "fit",
        *args,
        "--trainer.accelerator",
        "cpu",
        "--trainer.devices",
        "2",
        "--trainer.strategy",
        "ddp",
    ]
    port = str(free_port())
    start = time.monotonic()
    ranks = [
        subprocess.Popen(
            command,
            cwd=tmp_path,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            env=cli_environment(
                MASTER_ADDR="127.0.0.1", MASTER_PORT=port, NODE_RANK="0", LOCAL_RANK=str(rank), WORLD_SIZE="2"
            ),
        )
        for rank in (0, 1)
    ]
    try:
        outputs = [rank.communicate(timeout=180)[0] for rank in ranks]
    finally:
        for rank in ranks:
            rank.kill()
    assert time.monotonic() - start < 150, "a rank waited for the failed one"
    assert all(rank.returncode != 0 for rank in ranks), outputs
    assert "no_such_field" in outputs[0], outputs[0][-3000:]
    assert "failed on another rank" in outputs[1] and "no_such_field" in outputs[1], outputs[1][-3000:]


def weights(folder: Path) -> dict[str, torch.Tensor]:
    found = sorted(folder.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return torch.load(found[-1], map_location="cpu", weights_only=True)["state_dict"]


def largest_difference(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max(float((a[name].double() - b[name].double()).abs().max()) for name in a)


def test_two_ranks_with_batch_b_train_as_one_device_with_batch_2b(tiny_t5, data_root, tmp_path):
    """Why the weights must agree: the sampler draws one permutation of the split per (seed,
    epoch) and rank r takes its positions r, r + 2, ... so step s of the two ranks with batch B
    covers positions 2sB .. 2sB + 2B - 1 of that permutation, the very batch of one device with
    batch 2B. DDP averages the two ranks' gradients; each rank's loss is a mean over its target
    tokens, so the average equals the one device's mean over all tokens exactly when every
    target has the same number of tokens: LaMP_3's targets are the ratings "1" .. "5", checked
    below. Dropout is 0 in the tiny model and k = 0, so nothing else differs but float rounding
    (and padding, which attention masks away). AdamW divides each gradient by its running scale,
    so an element whose gradient is nearly zero turns float rounding into a visible step: the
    tolerance is a tenth of one step (lr 0.01); measured, the worst element differs by 1e-4 and
    most by 1e-6, while another seed (another order) moves every tensor by about 5e-2."""

    def run(folder: str, batch_size: int, *extra: str) -> list[str]:
        return [
            *tiny_args(tiny_t5, data_root, tmp_path / folder, "LaMP_3"),
            "--data.k",
            "0",
            "--data.batch_size",
            str(batch_size),
            "--model.lr",
            "0.01",
            "--trainer.max_epochs",
            "2",
            "--trainer.limit_val_batches",
            "0",
            *extra,
        ]

    main(["fit", *run("single", 4)])
    dataset = TokenizedSplit.load(next(p for p in (tmp_path / "single" / "cache").rglob("train-*") if p.is_dir()))
    assert len({len(dataset[i]["labels"]) for i in range(len(dataset))}) == 1, "targets of one length"
    result = subprocess.run(
        [
            sys.executable,
            str(ROOT / "cli.py"),
            "fit",
            *run("ddp", 2),
            "--trainer.devices",
            "2",
            "--trainer.strategy",
            "ddp",
        ],
        cwd=ROOT,
        env=cli_environment(),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-5000:]
    main(["fit", *run("other_order", 4, "--data.seed", "1")])

    single, ddp, other = (weights(tmp_path / name / "runs") for name in ("single", "ddp", "other_order"))
    assert largest_difference(single, ddp) < 1e-3
    assert largest_difference(single, other) > 1e-2, "the tolerance is far below what the order changes"
