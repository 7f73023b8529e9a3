"""Export a checkpoint as a plain Hugging Face folder that loads without lamp_pl.

    AutoModelForCausalLM.from_pretrained(DIR)        # or Seq2SeqLM / SequenceClassification
    AutoTokenizer.from_pretrained(DIR)

LoRA adapters are merged into the base by default; `adapter_only` writes the peft adapter alone
(`adapter_config.json` naming the base, for `peft.AutoPeftModelFor...`). The folder also holds the
run's config (`lamp_pl_config.yaml`) and a model card (`README.md`) with the task, retriever, k,
prompt options and the test metrics found next to the checkpoint.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

from lamp_pl.cache import COMPLETE, atomic_folder
from lamp_pl.errors import CheckpointError, ConfigError
from lamp_pl.lightning.checkpoints import load_checkpoint
from lamp_pl.models import family_class
from lamp_pl.resolve import resolve_model, resolve_tokenizer


def load_checkpoint_model(ckpt_path: str | Path):
    """The `LaMPModel` of a checkpoint, built and restored on CPU (any world size: single file)."""
    from lamp_pl.lightning.module import LaMPModel

    checkpoint = load_checkpoint(ckpt_path)
    hparams = checkpoint.get("hyper_parameters")
    if not isinstance(hparams, dict):
        raise CheckpointError(f"{ckpt_path}: not a lamp_pl checkpoint (no hyper_parameters)")
    # The base model and tokenizer it names must still be there, before anything is built.
    resolve_model(hparams.get("model_name_or_path"), hparams.get("random_init"))
    resolve_tokenizer(hparams.get("tokenizer") or hparams.get("model_name_or_path"))
    # load_from_checkpoint calls configure_model before loading, as the Trainer does. The export is
    # built on the CPU with transformers' default attention: a run trained with FlashAttention on a
    # GPU exports anywhere, and the saved files do not carry the choice.
    model = LaMPModel.load_from_checkpoint(ckpt_path, map_location="cpu", weights_only=True, attn_implementation=None)
    return model.eval(), checkpoint


def run_config(config: str | Path | None, ckpt_path: Path) -> Path | None:
    """The run's config: the one given, else the `config.yaml` LightningCLI saved for the run."""
    if config is not None:
        return Path(config)
    for folder in (ckpt_path.parent, *ckpt_path.parents[:3]):
        if (folder / "config.yaml").is_file():
            return folder / "config.yaml"
    return None


def test_metrics(ckpt_path: Path) -> dict[str, float] | None:
    """`metrics_test.json` written next to the checkpoint by `lamp-pl test --ckpt_path`."""
    path = ckpt_path.parent / "metrics_test.json"
    return json.loads(path.read_text()) if path.is_file() else None


def model_card(
    hparams: dict[str, Any], data: dict[str, Any], metrics: dict[str, float] | None, adapter_only: bool
) -> str:
    """A README.md describing what the exported model was trained for and how it scored."""
    family = hparams.get("family", "seq2seq")
    auto: str = family_class(family).auto_class_name
    retrieval = data.get("retrieval") or {}
    retrieval = retrieval if isinstance(retrieval, dict) else vars(retrieval)
    prompt = data.get("prompt") or {}
    prompt = prompt if isinstance(prompt, dict) else vars(prompt)
    random_init = hparams.get("random_init")
    base = f"randomly initialised ({random_init})" if random_init else hparams.get("model_name_or_path")
    lines = [
        f"# {hparams.get('task')} ({family}) fine-tuned with lamp_pl",
        "",
        f"- task: {hparams.get('task')}",
        f"- family: {family} (`{auto}`)",
        f"- base model: {base}",
        f"- LoRA: {hparams.get('peft') or 'none'}"
        + (" (adapter only)" if adapter_only else (" (merged)" if hparams.get("peft") else "")),
        f"- retriever: {retrieval.get('retriever', '?')} (encoder {retrieval.get('encoder', '-')})",
        f"- k: {data.get('k', '?')}",
        f"- prompt options: {json.dumps(prompt, default=str)}",
        f"- max_input_length: {data.get('max_input_length', '?')}",
        f"- chat_template: {hparams.get('chat_template', False)}",
        "",
        "## Test metrics",
        "",
        "| metric | value |",
        "|---|---|",
    ]
    lines += [f"| {k} | {v:.4f} |" for k, v in (metrics or {}).items()] or [
        "(no metrics_test.json next to the checkpoint)"
    ]
    lines += [
        "",
        "## Use",
        "",
        "```python",
        f"from transformers import {auto}, AutoTokenizer",
        f"model = {auto}.from_pretrained(DIR)",
        "tokenizer = AutoTokenizer.from_pretrained(DIR)",
        "```",
        "Prompts must be built as lamp_pl builds them (same task template, retriever and k), tokenized",
        "with truncation at max_input_length; a causal model reads the prompt without any special token",
        "the tokenizer appends (e.g. a T5-style `</s>`) and generates after it.",
    ]
    return "\n".join(lines) + "\n"


def export(config: str | Path | None, ckpt_path: str, out: Path, adapter_only: bool = False) -> Path:
    """Write a checkpoint as a Hugging Face folder (model, tokenizer, config, model card).

    Args:
        config: The run's YAML config (copied into the folder); None = the run's saved config.yaml.
        ckpt_path: A `.ckpt` file written by `lamp-pl fit`.
        out: Destination folder (replaced atomically).
        adapter_only: Keep a LoRA adapter separate instead of merging it into the base.

    Returns:
        The folder written.
    """
    ckpt = Path(ckpt_path)
    model, checkpoint = load_checkpoint_model(ckpt)
    hparams = {k: v for k, v in checkpoint["hyper_parameters"].items() if not k.startswith("_")}
    network = model.model
    if hparams.get("peft") is not None and not adapter_only:
        network = network.merge_and_unload()
    if adapter_only and hparams.get("peft") is None:
        raise ConfigError(f"export --adapter-only: {ckpt} was trained without LoRA (model.peft)")
    config_path = run_config(config, ckpt)
    data = dict(checkpoint.get("datamodule_hyper_parameters") or {})

    def write(folder: Path) -> None:
        network.save_pretrained(folder)
        model.tokenizer.save_pretrained(folder)
        if config_path is not None:
            shutil.copyfile(config_path, folder / "lamp_pl_config.yaml")
        (folder / "README.md").write_text(model_card(hparams, data, test_metrics(ckpt), adapter_only))

    out = Path(out)
    (out / COMPLETE).unlink(missing_ok=True)  # a new export replaces an old one, still atomically
    return atomic_folder(out, write)
