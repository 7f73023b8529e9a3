"""The shared frozen base of per-user adapters: the config's model, one LoRA slot swapped per user."""

from __future__ import annotations

from pathlib import Path

import torch
import yaml

from lamp_pl.checkpoints import check_checkpoint, load_checkpoint
from lamp_pl.commands import datamodule_from_config
from lamp_pl.datamodule import LaMPDataModule
from lamp_pl.errors import CheckpointError, ConfigError, reading
from lamp_pl.resolve import resolve_data_section, resolve_model


def load_config(configs: list[str], overrides: list[str] | None = None) -> tuple[LaMPDataModule, dict]:
    """The data module and the model section's arguments of LightningCLI config files, with the
    data section's task and tokenizer linked into the model's, as `lamp-pl fit` links them."""
    model_args: dict = {}
    for path in configs:  # later files win, key by key, as LightningCLI composes them
        with reading(path, "config"):
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        section = (document if isinstance(document, dict) else {}).get("model") or {}
        arguments = section.get("init_args", section) if isinstance(section, dict) else None
        if not isinstance(arguments, dict):
            raise ConfigError(f"{path}: the model section must be a mapping of LaMPModel arguments")
        model_args.update(arguments)
    datamodule = datamodule_from_config(configs, overrides)
    model_args.update(task=datamodule.task_name, tokenizer=datamodule.tokenizer_name)
    return datamodule, model_args


def resolve_base(datamodule: LaMPDataModule, model_args: dict, ckpt_path: str | Path | None) -> None:
    """Check the model, tokenizer, encoder and base checkpoint before any data is prepared."""
    import inspect

    from lamp_pl.module import LaMPModel

    default = inspect.signature(LaMPModel.__init__).parameters["model_name_or_path"].default
    resolve_data_section(datamodule)
    resolve_model(model_args.get("model_name_or_path") or default, model_args.get("random_init"))
    if ckpt_path is not None:
        check_checkpoint(ckpt_path)


def build_base(model_args: dict, ckpt_path: str | Path | None = None):
    """The config's `LaMPModel`, with a Lightning checkpoint's weights when given, in eval mode."""
    from lamp_pl.module import LaMPModel

    model = LaMPModel(**model_args)
    if ckpt_path is not None:
        state = load_checkpoint(ckpt_path).get("state_dict")
        if not isinstance(state, dict):
            raise CheckpointError(f"{ckpt_path}: not a Lightning checkpoint (no state_dict)")
        model.configure_model()
        model.load_state_dict(state)
    model.configure_model()  # builds the network where the model defers it to this hook (a no-op otherwise)
    return model.eval()


def lora_settings(r: int, alpha: int, dropout: float, model_args: dict, ckpt_path: str | Path | None) -> dict:
    """What every adapter of a folder must share (checked by `store.write_settings`)."""
    return {
        "r": r,
        "alpha": alpha,
        "dropout": dropout,
        "task": model_args["task"],
        "base": model_args.get("model_name_or_path"),
        "random_init": model_args.get("random_init"),
        "ckpt": None if ckpt_path is None else str(Path(ckpt_path).resolve()),
    }


def add_lora_slot(network: torch.nn.Module, settings: dict):
    """Wrap the base network with one LoRA adapter slot named ``user`` (base weights frozen)."""
    from peft import LoraConfig, TaskType, get_peft_model

    encoder_decoder = getattr(getattr(network, "config", None), "is_encoder_decoder", True)
    config = LoraConfig(
        task_type=TaskType.SEQ_2_SEQ_LM if encoder_decoder else TaskType.CAUSAL_LM,
        r=settings["r"],
        lora_alpha=settings["alpha"],
        lora_dropout=settings["dropout"],
    )
    return get_peft_model(network, config, adapter_name="user")


def lora_state(peft_model) -> dict[str, torch.Tensor]:
    from peft import get_peft_model_state_dict

    return {k: v.detach().clone() for k, v in get_peft_model_state_dict(peft_model, adapter_name="user").items()}


def set_lora_state(peft_model, state: dict[str, torch.Tensor]) -> None:
    """Swap the slot's weights in place: no base reload, no new modules."""
    from peft import set_peft_model_state_dict

    result = set_peft_model_state_dict(peft_model, state, adapter_name="user")
    unexpected = getattr(result, "unexpected_keys", [])
    if unexpected:
        raise ConfigError(f"adapter state does not fit the base model: unexpected keys {unexpected[:3]}")
