"""`lamp-pl`: LightningCLI for fit / validate / test / predict, plus the data and study commands."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import torch
from jsonargparse import set_parsing_settings
from lightning.pytorch.cli import LightningCLI

from lamp_pl.datamodule import LaMPDataModule
from lamp_pl.module import LaMPModel

# Dataclass fields document themselves with attribute docstrings; show those in --help.
set_parsing_settings(docstring_parse_attribute_docstrings=True)

# Commands outside the Lightning loop: name -> module exposing `main(argv) -> int`.
COMMANDS = {"check-data": "lamp_pl.data.check", "download": "lamp_pl.data.download",
            "synthetic": "lamp_pl.data.synthetic", "index": "lamp_pl.commands",
            "inspect": "lamp_pl.commands", "grid": "lamp_pl.grid",
            "export": "lamp_pl.export"}


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


def main(args: list[str] | None = None) -> int | None:
    """Entry point of the `lamp-pl` console script and of `python cli.py`."""
    argv = sys.argv[1:] if args is None else list(args)
    if argv and argv[0] in COMMANDS:
        module = importlib.import_module(COMMANDS[argv[0]])
        entry = getattr(module, argv[0].replace("-", "_") + "_main", None) or module.main
        return entry(argv[1:])
    LaMPCLI(LaMPModel, LaMPDataModule, args=argv, seed_everything_default=0,
            save_config_kwargs={"overwrite": True})
    return 0
