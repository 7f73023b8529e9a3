"""`lamp-pl fit | validate | test | predict`: the LightningCLI half of the command tree.

Imported only by those four commands (see `lamp_pl.cli`), so the others start without Lightning.
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import torch
from jsonargparse import set_parsing_settings
from lightning.pytorch.cli import LightningCLI

from lamp_pl.datamodule import LaMPDataModule
from lamp_pl.module import LaMPModel
from lamp_pl.quiet import silence_third_party_notices

# Dataclass fields document themselves with attribute docstrings; show those in --help.
set_parsing_settings(docstring_parse_attribute_docstrings=True)


class LaMPCLI(LightningCLI):
    """Links the data section's task and tokenizer to the model, so each is set once."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.task", "model.task")
        parser.link_arguments("data.tokenizer", "model.tokenizer")

    def _resolve_ckpt(self) -> None:
        """`--ckpt_path best|last` in a new process: take them from the newest `last.ckpt` under
        the trainer's root dir (its ModelCheckpoint state names the best). Lightning alone would
        look only in this run's fresh, versioned checkpoint folder."""
        config = self.config_init[self.subcommand]
        if config.get("ckpt_path") not in ("best", "last") or self.trainer.checkpoint_callback.best_model_path:
            return
        candidates = sorted(Path(self.trainer.default_root_dir).rglob("last*.ckpt"), key=lambda p: p.stat().st_mtime)
        if not candidates:
            raise FileNotFoundError(f"--ckpt_path {config['ckpt_path']}: no last.ckpt under "
                                    f"{self.trainer.default_root_dir}; run fit first or pass a checkpoint path")
        last = candidates[-1]
        if config["ckpt_path"] == "best":
            states = torch.load(last, map_location="cpu", weights_only=False).get("callbacks", {})
            best = next((s.get("best_model_path") for k, s in states.items() if k.startswith("ModelCheckpoint")), None)
            last = Path(best) if best and Path(best).is_file() else last
        print(f"lamp_pl: --ckpt_path {config['ckpt_path']} -> {last}")
        config["ckpt_path"] = str(last)

    before_fit = before_validate = before_test = before_predict = _resolve_ckpt

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
        """Lightning's default logger (`logger=True`) made explicit: a CSVLogger in the same place,
        so no "tensorboardX has been removed" warning; presets for others are in configs/logger/."""
        if config.get("logger") in (None, True):
            from lightning.pytorch.loggers import CSVLogger

            config["logger"] = CSVLogger(save_dir=config.get("default_root_dir") or Path.cwd())
        return super()._instantiate_trainer(config, callbacks)


def run_training(args: list[str] | None) -> None:
    """Run one of fit / validate / test / predict; `args` starts with the subcommand's name.

    LightningCLI always reads `sys.argv` here: `args` from Python (tests, `lamp-pl grid`) stand in
    for it during the call, so LightningCLI never warns that it got both `args` and a command line.
    """
    silence_third_party_notices()
    saved = sys.argv
    if args is not None:
        sys.argv = [saved[0] if saved else "lamp-pl", *args]
    try:
        LaMPCLI(LaMPModel, LaMPDataModule, seed_everything_default=0, save_config_kwargs={"overwrite": True})
    finally:
        sys.argv = saved
