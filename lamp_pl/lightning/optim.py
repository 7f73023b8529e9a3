"""The optimizer every lamp_pl LightningModule uses: AdamW with a linear warmup and decay.

The generator (`LaMPModel`) and the retriever (`RetrieverModule`) train with the same rule, the
LaMP paper's: no weight decay on biases and normalisation weights, the learning rate rising
linearly over the first `warmup_ratio` of the steps and falling linearly to 0 at the last one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch

from lamp_pl.lightning.settings import TrainSettings

NO_DECAY = ("bias", "norm.weight")
"""Parameter-name suffixes trained without weight decay (`LayerNorm.weight`, `layer_norm.weight`,
`final_layer_norm.weight`... all end in `norm.weight`)."""


def adamw_with_linear_warmup(
    named_parameters: Iterable[tuple[str, torch.nn.Parameter]], settings: TrainSettings, total_steps: int
) -> dict[str, Any]:
    """What `configure_optimizers` returns: AdamW over the parameters that train, stepped per batch.

    Args:
        named_parameters: `module.named_parameters()`; frozen ones (LoRA's base) are left out, so
            they never reach the optimizer or its state.
        settings: The peak learning rate, the weight decay of every parameter but biases and
            norms, and the fraction of `total_steps` spent warming up.
        total_steps: The run's optimizer steps (`trainer.estimated_stepping_batches`).
    """
    lr, weight_decay, warmup_ratio = settings.lr, settings.weight_decay, settings.warmup_ratio
    named = [(name, p) for name, p in named_parameters if p.requires_grad]
    groups = [
        {"params": [p for name, p in named if not name.endswith(NO_DECAY)], "weight_decay": weight_decay},
        {"params": [p for name, p in named if name.endswith(NO_DECAY)], "weight_decay": 0.0},
    ]
    optimizer = torch.optim.AdamW(groups, lr=lr)
    total = max(1, int(total_steps))
    warmup = int(warmup_ratio * total)

    def linear(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (total - step) / max(1, total - warmup))

    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, linear)
    return {"optimizer": optimizer, "lr_scheduler": {"scheduler": scheduler, "interval": "step"}}


__all__ = ["NO_DECAY", "adamw_with_linear_warmup"]
