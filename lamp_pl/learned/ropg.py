"""`train_retriever`: ROPG's encoder training, by distillation (``kd``) or policy gradient (``rl``).

Both methods read the same `score_items` utilities (`UtilityDataModule`), step with the same
`TrainSettings` and save the encoder folder that `retrieval.encoder` reads; they differ only in
the module's loss (`RetrieverModule`'s KL to the utilities' softmax, `RLRetrieverModule`'s
REINFORCE on them). `lamp-pl fit-retriever` and `fit-retriever-rl` call it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

import lightning as L

from lamp_pl.learned.distill import UtilityDataModule, check_inputs, train_encoder
from lamp_pl.learned.retriever_module import RetrieverModule
from lamp_pl.learned.rl import RLRetrieverModule
from lamp_pl.lightning.settings import TrainSettings

Method = Literal["kd", "rl"]
MODULES: dict[str, type[RetrieverModule]] = {"kd": RetrieverModule, "rl": RLRetrieverModule}


def train_retriever(
    train_utilities: str | Path,
    encoder: str,
    out_dir: str | Path,
    training: TrainSettings | None = None,
    *,
    method: Method = "kd",
    val_utilities: str | Path | None = None,
    use_metric: bool = False,
    group_by_user: bool = False,
    trainer: dict[str, Any] | None = None,
    **objective: Any,
) -> Path:
    """Train the encoder on generator utilities and save it to ``<out_dir>/encoder``.

    Args:
        train_utilities: ``utilities.jsonl`` from `score_items` on the training split.
        encoder: The encoder to start from (the retrieval config's `encoder`).
        out_dir: Run folder.
        training: Learning rate, batch size, epochs, warm-up, weight decay and the seed of the
            training order, the draws and the run (None: the `TrainSettings` defaults).
        method: ``kd`` (distillation, ROPG-KD) or ``rl`` (policy gradient, ROPG-RL).
        val_utilities: ``utilities.jsonl`` of dev, for validation NDCG (optional).
        use_metric: Train on the metric utilities (``score_items(with_metric=True)``).
        group_by_user: Keep each user's questions together in batches (see `UtilityDataModule`).
        trainer: Extra `lightning.Trainer` arguments, e.g. `{accelerator: gpu, devices: 2}`.
        **objective: The module's other arguments (temperature, utility_temperature,
            max_length, normalize, dropout; `rl` also k and samples).

    Returns:
        The saved encoder folder.
    """
    training = TrainSettings.of(training)
    if method not in MODULES:
        raise ValueError(f"method must be one of {sorted(MODULES)}, got {method!r}")
    check_inputs(encoder, train_utilities, val_utilities)
    L.seed_everything(training.seed, workers=True, verbose=False)
    module = MODULES[method](encoder, training=training, **objective)
    val = str(val_utilities) if val_utilities else None
    data = UtilityDataModule(str(train_utilities), val, training.batch_size, use_metric, training.seed, group_by_user)
    return train_encoder(module, data, out_dir, training.epochs, trainer)


__all__ = ["MODULES", "Method", "train_retriever"]
