"""`lamp-pl score-items`, `attribute` and `fit-retriever`: the learned-retrieval commands.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); each exposes every
setting of the library function it calls (`lamp_pl.learned.scoring.score_items`,
`lamp_pl.learned.attribution.attribute`, `lamp_pl.learned.distill.fit_retriever`) except the
objects and process ranks a Python caller passes. `lamp-pl ropg-kd` is `lamp_pl.cli.ropg_kd`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from lamp_pl.datamodule import LaMPDataModule


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


def fit_retriever(
    train: Path,
    encoder: str,
    out_dir: Path,
    val: Path | None = None,
    batch_size: int = 8,
    max_epochs: int = 3,
    lr: float = 1e-5,
    temperature: float = 1.0,
    utility_temperature: float = 1.0,
    warmup_ratio: float = 0.1,
    max_length: int = 256,
    normalize: bool = False,
    use_metric: bool = False,
    dropout: bool = True,
    group_by_user: bool = False,
    seed: int = 0,
    trainer: dict[str, Any] | None = None,
) -> Path:
    """Distil item utilities into the dense retriever (ROPG-KD).

    Prints the trained encoder's folder, which a config's `data.retrieval.encoder` then names.

    Args:
        train: `utilities.jsonl` of the training split (from `lamp-pl score-items`).
        encoder: The encoder to start from (the retrieval config's `encoder`).
        out_dir: Run folder; the trained encoder goes to `<out_dir>/encoder`.
        val: `utilities.jsonl` of dev, for the validation NDCG.
        batch_size: Questions per batch and device.
        max_epochs: Passes over the training questions.
        lr: AdamW learning rate of the encoder.
        temperature: Softmax temperature of the retriever's scores.
        utility_temperature: Softmax temperature of the generator's utilities (the target).
        warmup_ratio: Fraction of the steps spent warming the learning rate up linearly.
        max_length: Most tokens per encoded query or item.
        normalize: L2-normalise the embeddings (cosine scores), as the index must then too.
        use_metric: Distil the metric utilities (`score-items --with_metric`) instead of the
            likelihoods.
        dropout: Keep the encoder's dropout on while training.
        group_by_user: Keep each user's questions together in batches.
        seed: Seed of the training order and of the run.
        trainer: Extra `lightning.Trainer` arguments, e.g. `{accelerator: gpu, devices: 2}`.
    """
    from lamp_pl.learned.distill import fit_retriever as fit

    return fit(
        train,
        encoder,
        out_dir,
        val_utilities=val,
        batch_size=batch_size,
        max_epochs=max_epochs,
        lr=lr,
        temperature=temperature,
        utility_temperature=utility_temperature,
        warmup_ratio=warmup_ratio,
        max_length=max_length,
        normalize=normalize,
        use_metric=use_metric,
        dropout=dropout,
        group_by_user=group_by_user,
        seed=seed,
        trainer=trainer,
    )
