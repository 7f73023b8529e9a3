"""One rank of test_learned's 2-process gloo run (started by torch.distributed.run)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import torch.distributed as dist
from test_learned import make_datamodule


def main() -> None:
    args = json.loads(sys.argv[1])
    dist.init_process_group("gloo")
    from lamp_pl.learned.attribution import attribute
    from lamp_pl.learned.ropg import train_retriever
    from lamp_pl.learned.scoring import score_items
    from lamp_pl.lightning.settings import TrainSettings

    out = Path(args["out"])
    dm = make_datamodule(Path(args["data_root"]), Path(args["tiny_t5"]), Path(args["tiny_bert"]), out / "cache")
    utilities = score_items(dm, args["ckpt"], candidates=3, split="train", batch_size=5, chunk_size=4, progress=False)
    attribution = attribute(dm, args["ckpt"], split="dev", out=out / "attribution.json", chunk_size=2, progress=False)
    # Per-rank batch 2 on 2 ranks = batch 4 in one process.
    encoder = train_retriever(
        utilities,
        args["tiny_bert"],
        out / "retriever",
        TrainSettings(batch_size=2, epochs=2, lr=3e-3),
        dropout=False,
        trainer={"enable_progress_bar": False, "devices": 2, "strategy": "ddp"},
    )
    if dist.get_rank() == 0:
        report = {
            "world_size": dist.get_world_size(),
            "utilities": str(utilities),
            "attribution": str(attribution),
            "encoder": str(encoder),
        }
        (out / "report.json").write_text(json.dumps(report))
    dist.barrier()


if __name__ == "__main__":
    main()
