"""`lamp-pl score-items`, `attribute`, `fit-retriever` and `fit-retriever-rl`: the learned-retrieval
commands.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); each exposes every
setting of the library function it calls (`lamp_pl.learned.scoring.score_items`,
`lamp_pl.learned.attribution.attribute`, `lamp_pl.learned.ropg.train_retriever`) except the
objects and process ranks a Python caller passes. `lamp-pl fit-retriever-rl` is `fit-retriever
--method rl`; `lamp-pl ropg-kd` is `lamp_pl.cli.ropg_kd`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from lamp_pl.lightning.settings import ENCODER_TRAINING, TrainSettings

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


def fit_retriever(
    train_utilities: Path,
    encoder: str,
    out_dir: Path,
    val_utilities: Path | None = None,
    method: Literal["kd", "rl"] = "kd",
    training: TrainSettings = ENCODER_TRAINING,
    use_metric: bool = False,
    group_by_user: bool = False,
    k: int = 1,
    samples: int = 4,
    temperature: float = 1.0,
    utility_temperature: float = 1.0,
    max_length: int = 256,
    normalize: bool = False,
    dropout: bool = True,
    trainer: dict[str, Any] | None = None,
) -> Path:
    """Train the encoder on generator utilities (ROPG-KD) and save it for `retrieval.encoder`.

    With `--method rl` (or `lamp-pl fit-retriever-rl`) the encoder is trained by policy
    gradient instead (ROPG-RL): the utilities are the rewards of `samples` drawn sets of `k`
    items. Prints the trained encoder folder (`<out_dir>/encoder`).

    Args:
        train_utilities: ``utilities.jsonl`` from `lamp-pl score-items` on the training split.
        encoder: The encoder to start from (the retrieval config's `encoder`).
        out_dir: Run folder; the trained encoder goes to ``<out_dir>/encoder``.
        val_utilities: ``utilities.jsonl`` of dev, for validation NDCG (optional).
        method: ``kd`` distils the utilities' softmax (ROPG-KD); ``rl`` rewards drawn sets (ROPG-RL).
        training: AdamW learning rate of the encoder, questions per batch and device, passes,
            warm-up (then linear decay), weight decay, and the seed of the training order, the
            draws and the run (`--lr`, `--batch_size`, `--max_epochs`, `--seed` ... also work).
        use_metric: Train on the task metric of the generator's output
            (``score-items --with_metric``) instead of its log-likelihood of the gold.
        group_by_user: Keep each user's questions together in batches (they share candidates).
        k: ``rl``: items per drawn set (the generator's k).
        samples: ``rl``: sets drawn per question and step (their mean reward is the baseline).
        temperature: Softmax temperature of the retriever's scores (the policy, with `rl`).
        utility_temperature: Softmax temperature of the generator's utilities (the target; with
            `rl`, of the validation NDCG target).
        max_length: Most tokens per encoded query or item.
        normalize: L2-normalise the embeddings (as `retrieval.normalize`; keep them equal).
        dropout: Keep the encoder's dropout on while training (off: deterministic steps).
        trainer: Extra `lightning.Trainer` arguments, e.g. `{accelerator: gpu, devices: 2}`.
    """
    from lamp_pl.learned.ropg import train_retriever

    policy = {"k": k, "samples": samples} if method == "rl" else {}
    objective = {"temperature": temperature, "utility_temperature": utility_temperature, "dropout": dropout}
    return train_retriever(
        train_utilities,
        encoder,
        out_dir,
        training,
        method=method,
        val_utilities=val_utilities,
        use_metric=use_metric,
        group_by_user=group_by_user,
        trainer=trainer,
        max_length=max_length,
        normalize=normalize,
        **objective,
        **policy,
    )


def fit_retriever_rl(argv: list[str]) -> int:
    """Train the encoder by policy gradient (ROPG-RL) and save it for `retrieval.encoder`.

    `lamp-pl fit-retriever --method rl`: the same options (`--k`, `--samples` among them).
    """
    from lamp_pl.cli.tree import run_function

    return run_function("fit-retriever-rl", fit_retriever, ["--method", "rl", *argv])
