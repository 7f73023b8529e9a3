"""`lamp-pl`: LightningCLI for fit / validate / test / predict, plus the data and study commands."""

from __future__ import annotations

import importlib
import sys

from jsonargparse import set_parsing_settings
from lightning.pytorch.cli import LightningCLI

from lamp_pl.datamodule import LaMPDataModule
from lamp_pl.errors import one_line_errors, strip_verbose
from lamp_pl.module import LaMPModel
from lamp_pl.runs import default_run_folder, resolve_checkpoint

# Dataclass fields document themselves with attribute docstrings; show those in --help.
set_parsing_settings(docstring_parse_attribute_docstrings=True)

# Commands outside the Lightning loop: name -> module exposing `main(argv) -> int`.
COMMANDS = {"check-data": "lamp_pl.data.check", "download": "lamp_pl.data.download",
            "synthetic": "lamp_pl.data.synthetic", "index": "lamp_pl.commands",
            "inspect": "lamp_pl.commands", "grid": "lamp_pl.grid", "evaluate": "lamp_pl.evaluate",
            "score-items": "lamp_pl.learned.commands", "attribute": "lamp_pl.learned.commands",
            "fit-retriever": "lamp_pl.learned.commands", "ropg-kd": "lamp_pl.learned.commands",
            "convert": "lamp_pl.data.annotators", "fit-users": "lamp_pl.adapters.commands",
            "test-users": "lamp_pl.adapters.commands", "export": "lamp_pl.export"}


class LaMPCLI(LightningCLI):
    """Links the data section's task and tokenizer to the model, so each is set once."""

    def add_arguments_to_parser(self, parser) -> None:
        parser.link_arguments("data.task", "model.task")
        parser.link_arguments("data.tokenizer", "model.tokenizer")
        parser.add_argument("--run_name", type=str | None, default=None,
                            help="Name of this run inside its experiment folder runs/<task>/<retriever>/<run_name> "
                                 "(used when trainer.default_root_dir is not set)")

    def before_instantiate_classes(self) -> None:
        """Give each experiment its own folder when `trainer.default_root_dir` is not set."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        if config.trainer.get("default_root_dir") is None:
            config.trainer.default_root_dir = str(default_run_folder(config.data, config.get("run_name")))

    def _resolve_ckpt(self) -> None:
        """`--ckpt_path best|last` in a new process: resolved inside this experiment's run folder
        only (see `lamp_pl.runs`); every checkpoint is loaded with weights_only=True."""
        config = self.config_init[self.subcommand]
        if config.get("weights_only") is None and "weights_only" in config:
            config["weights_only"] = True
        in_process = self.trainer.checkpoint_callback is not None and self.trainer.checkpoint_callback.best_model_path
        if config.get("ckpt_path") not in ("best", "last") or in_process:
            return
        resolved = resolve_checkpoint(config["ckpt_path"], self.trainer.default_root_dir)
        print(f"lamp_pl: --ckpt_path {config['ckpt_path']} -> {resolved}")
        config["ckpt_path"] = str(resolved)

    before_fit = before_validate = before_test = before_predict = _resolve_ckpt


def main(args: list[str] | None = None) -> int | None:
    """Entry point of the `lamp-pl` console script and of `python cli.py`."""
    argv = sys.argv[1:] if args is None else list(args)
    with one_line_errors(argv[0] if argv else "lamp-pl", argv):  # LaMPError -> one line, exit 2
        argv = strip_verbose(argv)
        if argv and argv[0] in COMMANDS:
            module = importlib.import_module(COMMANDS[argv[0]])
            entry = getattr(module, argv[0].replace("-", "_") + "_main", None) or module.main
            return entry(argv[1:])
        LaMPCLI(LaMPModel, LaMPDataModule, args=argv, seed_everything_default=0,
                save_config_kwargs={"overwrite": True})
    return 0
