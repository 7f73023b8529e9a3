"""`lamp-pl export`: a checkpoint as a plain Hugging Face folder (the work is `lamp_pl.lightning.export`)."""

from __future__ import annotations

from pathlib import Path


def export(ckpt_path: Path, out: Path, config: Path | None = None, adapter_only: bool = False) -> str:
    """Export a checkpoint as a plain Hugging Face model folder.

    The folder (model, tokenizer, the run's config and a model card) loads with
    `AutoModelFor...` / `AutoTokenizer.from_pretrained`, without lamp_pl.

    Args:
        ckpt_path: A `.ckpt` file written by `lamp-pl fit`.
        out: Destination folder (replaced atomically).
        config: The run's YAML config, copied into the folder (default: the `config.yaml` that
            `lamp-pl fit` saved beside the run).
        adapter_only: Keep a LoRA adapter separate (a peft adapter folder naming its base)
            instead of merging it into the base.
    """
    from lamp_pl.lightning.export import export as write

    return f"lamp_pl: exported to {write(config, str(ckpt_path), out, adapter_only)}"
