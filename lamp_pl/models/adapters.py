"""LoRA adapters (peft), quantized bases (bitsandbytes) and gradient checkpointing.

With LoRA only the adapter weights (and a classifier's head) train; `trainable_state` is what a
checkpoint then needs to hold, because the frozen base is reloaded from its hub name or folder.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch

from lamp_pl.errors import ConfigError

Quantization = Literal["4bit", "8bit"]


@dataclass(frozen=True)
class LoraSettings:
    """A LoRA section (`model.peft`, and the per-user adapters' `--lora`)."""

    r: int = 8
    """Rank of the update matrices."""
    alpha: int = 16
    """Scaling numerator: the update is scaled by alpha / r."""
    dropout: float = 0.05
    """Dropout on the adapter's input."""
    target_modules: list[str] | None = None
    """Module names to adapt; None = peft's default for the model type (the attention
    projections: q/v for T5 and BERT, q_proj/v_proj for Llama, Mistral and Qwen2)."""


ADAPTER_LORA = LoraSettings(dropout=0.0)
"""The per-user and task adapters' LoRA (`lamp-pl fit-users`, `fit-task-adapter`): `model.peft`'s
rank and alpha without dropout, as those commands always trained (a user's few pairs, few passes)."""


def quantization_kwargs(quantization: Quantization | None) -> dict[str, Any]:
    """`from_pretrained` arguments that load the base in 4 or 8 bits; a clear error off CUDA."""
    if quantization is None:
        return {}
    if quantization not in ("4bit", "8bit"):
        raise ConfigError(f"model.quantization: {quantization!r} is not one of '4bit', '8bit'")
    if not torch.cuda.is_available():
        raise ConfigError(
            f"model.quantization {quantization}: bitsandbytes quantization needs a CUDA GPU and none "
            "is visible; drop model.quantization (plain LoRA runs anywhere) or run on a GPU"
        )
    try:
        import bitsandbytes  # noqa: F401
    except ImportError as error:
        raise ConfigError("model.quantization needs bitsandbytes: pip install 'lamp_pl[quantization]'") from error
    from transformers import BitsAndBytesConfig

    if quantization == "4bit":
        config = BitsAndBytesConfig(
            load_in_4bit=True,
            bnb_4bit_quant_type="nf4",
            bnb_4bit_use_double_quant=True,
            bnb_4bit_compute_dtype=torch.bfloat16,
        )
    else:
        config = BitsAndBytesConfig(load_in_8bit=True)
    return {"quantization_config": config, "device_map": {"": torch.cuda.current_device()}}


def apply_lora(
    model: torch.nn.Module, settings: LoraSettings, task_type: str, quantized: bool, gradient_checkpointing: bool
) -> torch.nn.Module:
    """Wrap `model` with LoRA adapters; the base is frozen."""
    from peft import LoraConfig, get_peft_model, prepare_model_for_kbit_training

    if quantized:
        model = prepare_model_for_kbit_training(model, use_gradient_checkpointing=gradient_checkpointing)
    config = LoraConfig(
        r=settings.r,
        lora_alpha=settings.alpha,
        lora_dropout=settings.dropout,
        target_modules=settings.target_modules,
        task_type=task_type,
    )
    return get_peft_model(model, config)


def enable_gradient_checkpointing(model: torch.nn.Module, adapters: bool) -> None:
    """Recompute activations in backward; with frozen embeddings the inputs must require grad."""
    model.gradient_checkpointing_enable(gradient_checkpointing_kwargs={"use_reentrant": False})
    if adapters:
        model.enable_input_require_grads()


def trainable_state(state: dict[str, torch.Tensor], trainable: set[str], prefix: str) -> dict[str, torch.Tensor]:
    """`state` without the frozen parameters and buffers of the network under `prefix`."""
    return {k: v for k, v in state.items() if not k.startswith(prefix) or k in trainable}


def mark_fsdp_blocks(model: torch.nn.Module) -> None:
    """Tag the network's transformer blocks (`_no_split_modules`) for `fsdp_block_policy`."""
    names = set()
    for module in model.modules():
        names.update(getattr(module, "_no_split_modules", None) or [])
    for module in model.modules():
        if type(module).__name__ in names:
            module._lamp_pl_fsdp_block = True


def fsdp_block_policy(module: torch.nn.Module, recurse: bool, nonwrapped_numel: int) -> bool:
    """FSDP auto-wrap policy: one FSDP unit per transformer block of whichever family is built
    (the classes the model itself declares unsplittable), so one preset serves every family."""
    return True if recurse else bool(getattr(module, "_lamp_pl_fsdp_block", False))
