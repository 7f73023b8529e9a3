"""`lamp-pl score-items` and `attribute`: the learned-retrieval commands that read a config.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); each exposes every
setting of the library function it calls (`lamp_pl.learned.scoring.score_items`,
`lamp_pl.learned.attribution.attribute`) except the objects and process ranks a Python caller
passes. `lamp-pl fit-retriever` is `lamp_pl.learned.distill.fit_retriever` itself, and
`lamp-pl ropg-kd` is `lamp_pl.cli.ropg_kd`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from lamp_pl.lightning.datamodule import LaMPDataModule


def score_items(
    data: LaMPDataModule,
    ckpt_path: Path,
    candidates: int = 20,
    split: str = "train",
    batch_size: int = 32,
    chunk_size: int = 64,
    with_metric: bool = False,
    progress: bool = True,
) -> Path:
    """Score each candidate profile item by the generator's likelihood of the gold.

    Writes (and prints the path of) the split's `utilities.jsonl` beside its retrieval results;
    cached by the checkpoint's hash and resumable chunk by chunk.

    Args:
        data: The config's data section: its retrieval ranks the candidates and its prompt
            settings build the one-item prompts.
        ckpt_path: The generator's Lightning checkpoint.
        candidates: How many top-ranked items of each question to score (`data.retrieval.k_max`
            must be at least this).
        split: Whose questions are scored (needs gold outputs).
        batch_size: Prompt and gold pairs per forward pass.
        chunk_size: Questions per resumable chunk file.
        with_metric: Also generate with each single item and store the task metric.
        progress: Show a progress bar.
    """
    from lamp_pl.learned.scoring import score_items as score

    return score(
        data,
        ckpt_path,
        candidates,
        split,
        batch_size=batch_size,
        chunk_size=chunk_size,
        with_metric=with_metric,
        progress=progress,
    )


def attribute(
    data: LaMPDataModule,
    ckpt_path: Path,
    split: str = "dev",
    out: Path | None = None,
    batch_size: int = 32,
    chunk_size: int = 64,
    progress: bool = True,
) -> dict:
    """Attribute each retrieved item: leave-one-out likelihood change and attention share.

    Prints the file written and its per-position summary.

    Args:
        data: The config's data section, whose k, offset, retrieval and prompt settings make
            the prompts as the generator reads them.
        ckpt_path: The generator's Lightning checkpoint.
        split: The split attributed (needs gold outputs).
        out: The JSON file to write (default: beside the split's retrieval results).
        batch_size: Leave-one-out prompts per forward pass.
        chunk_size: Questions per resumable chunk.
        progress: Show a progress bar.
    """
    from lamp_pl.learned.attribution import attribute as run

    path = run(data, ckpt_path, split, out, batch_size=batch_size, chunk_size=chunk_size, progress=progress)
    return {"file": str(path), "summary": json.loads(path.read_text())["summary"]}
