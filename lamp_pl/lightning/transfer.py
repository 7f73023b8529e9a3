"""Moving a LaMP batch to the device: its tensors only, its text fields passed on as they are.

A LaMP batch (`lamp_pl.pipeline.tokenized.collate`) holds tensors at its top level only, beside
lists of ids, targets, prompts and each question's retrieved items. Lightning's default transfer
walks every element of those lists looking for tensors, on every step (0.2-0.3 ms a batch of 8 at
k = 1 on CPU, growing with k); `LaMPModel.transfer_batch_to_device` moves the top-level tensors
instead and leaves any other batch to Lightning.
"""

from __future__ import annotations

from typing import Any

import torch


def is_flat_batch(batch: Any) -> bool:
    """A dict of tensors and lists whose lists hold no tensor at their first level."""
    if not isinstance(batch, dict):
        return False
    for value in batch.values():
        if isinstance(value, list):
            if any(isinstance(v, torch.Tensor) for v in value):
                return False
        elif not isinstance(value, torch.Tensor):
            return False
    return True


def move_flat_batch(batch: dict, device: torch.device) -> dict:
    """`batch` with its tensors on `device` (non-blocking to a GPU) and its lists unchanged."""
    non_blocking = isinstance(device, torch.device) and device.type == "cuda"
    return {k: v.to(device, non_blocking=non_blocking) if isinstance(v, torch.Tensor) else v for k, v in batch.items()}
