"""`lamp-pl fit | validate | test | predict`: the LightningCLI half of the command tree.

Imported only by those four commands (see `lamp_pl.cli.tree`), so the others start without Lightning.
"""

from __future__ import annotations

import sys
from argparse import ArgumentError
from pathlib import Path
from typing import Any

from jsonargparse import set_parsing_settings
from lightning.pytorch.cli import LightningCLI

from lamp_pl.cli.config import help_wanted, link_sections, option_error
from lamp_pl.cli.quiet import silence_evaluation_notices, silence_third_party_notices
from lamp_pl.cli.runs import default_run_folder, resolve_checkpoint
from lamp_pl.lightning.checkpoints import check_ckpt_argument
from lamp_pl.lightning.datamodule import LaMPDataModule
from lamp_pl.lightning.module import LaMPModel
from lamp_pl.resolve import resolve_encoder, resolve_model, resolve_tokenizer
from lamp_pl.shipped import resolve_config_args


class LaMPCLI(LightningCLI):
    """Links the data section's task and tokenizer to the model (`lamp_pl.cli.config.LINKS`), so each is set once.

    `subcommand` names the one subcommand this process runs: only its parser is built (each of
    Lightning's four parsers costs a signature walk of the trainer, model and data classes).
    """

    def __init__(self, *args: Any, subcommand: str | None = None, **kwargs: Any) -> None:
        self._only = subcommand
        super().__init__(*args, **kwargs)

    def subcommands(self) -> dict[str, set[str]]:  # type: ignore[override]
        every = LightningCLI.subcommands()
        only = getattr(self, "_only", None)
        return {only: every[only]} if only in every else every

    def add_arguments_to_parser(self, parser) -> None:
        link_sections(parser)
        parser.add_argument(
            "--run_name",
            type=str | None,
            default=None,
            help="Name of this run inside its experiment folder runs/<task>/<retriever>/<run_name> "
            "(used when trainer.default_root_dir is not set)",
        )

    def _parse_ckpt_path(self) -> None:
        """LightningCLI reads an explicit `--ckpt_path`'s hyper-parameters while parsing: refuse a
        missing or pickled checkpoint in lamp_pl's words before it does."""
        if self.config.get("subcommand"):
            check_ckpt_argument(self.config[self.config.subcommand].get("ckpt_path"))
        super()._parse_ckpt_path()

    def _set_seed(self) -> None:
        """Check the inputs first: Lightning's start-up lines (the seed, then the devices) come
        only for a command that will run."""
        self._check_inputs()
        super()._set_seed()

    def _check_inputs(self) -> None:
        """Resolve the model, tokenizer and encoder before anything is built or prepared (see
        `lamp_pl.resolve`), check an explicit `--ckpt_path` (`best` / `last` included: that the
        run folder has one), and give each experiment its own folder when
        `trainer.default_root_dir` is not set."""
        config = self.config[self.subcommand] if self.subcommand else self.config
        model = config.get("model") or {}
        resolve_tokenizer(config.data.get("tokenizer"))
        if model.get("tokenizer") not in (None, config.data.get("tokenizer")):
            resolve_tokenizer(model.get("tokenizer"))
        if model.get("family") != "served":  # a served model's weights are the server's, never loaded here
            resolve_model(model.get("model_name_or_path"), model.get("random_init"))
        resolve_encoder(config.data.get("retrieval"), config.data.get("k", 1))
        check_ckpt_argument(config.get("ckpt_path"))
        if config.trainer.get("default_root_dir") is None:
            config.trainer.default_root_dir = str(default_run_folder(config.data, config.get("run_name")))
        if config.get("ckpt_path") in ("best", "last"):
            check_ckpt_argument(resolve_checkpoint(config.ckpt_path, config.trainer.default_root_dir))

    def _resolve_ckpt(self) -> None:
        """`--ckpt_path best|last` in a new process: resolved inside this experiment's run folder
        only (see `lamp_pl.cli.runs`); every checkpoint is loaded with weights_only=True."""
        config = self.config_init[self.subcommand]
        if self.subcommand != "fit":
            silence_evaluation_notices()
        if config.get("weights_only") is None and "weights_only" in config:
            config["weights_only"] = True
        in_process = self.trainer.checkpoint_callback is not None and self.trainer.checkpoint_callback.best_model_path
        if config.get("ckpt_path") not in ("best", "last") or in_process:
            return
        resolved = resolve_checkpoint(config["ckpt_path"], self.trainer.default_root_dir)
        check_ckpt_argument(resolved)
        print(f"lamp_pl: --ckpt_path {config['ckpt_path']} -> {resolved}")
        config["ckpt_path"] = str(resolved)

    before_fit = before_validate = before_test = before_predict = _resolve_ckpt

    def _instantiate_trainer(self, config: dict[str, Any], callbacks: list) -> Any:
        """Lightning's default logger (`logger=True`) made explicit: a CSVLogger in the same place,
        so no "tensorboardX has been removed" warning; presets for others are the shipped `logger/*` configs."""
        if config.get("logger") in (None, True):
            from lightning.pytorch.loggers import CSVLogger

            config["logger"] = CSVLogger(save_dir=config.get("default_root_dir") or Path.cwd())
        return super()._instantiate_trainer(config, callbacks)


def run_training(args: list[str] | None) -> None:
    """Run one of fit / validate / test / predict; `args` starts with the subcommand's name.
    A `--config` value may name a shipped config (`demo`, `task/LaMP_4`; see `lamp_pl.shipped`).

    LightningCLI always reads `sys.argv` here: `args` from Python (tests, `lamp-pl grid`) stand in
    for it during the call, so LightningCLI never warns that it got both `args` and a command line.
    """
    silence_third_party_notices()
    saved = sys.argv
    resolved = resolve_config_args(list(saved[1:] if args is None else args))
    if args is not None or resolved != saved[1:]:
        sys.argv = [saved[0] if saved else "lamp-pl", *resolved]
    # Dataclass fields document themselves with attribute docstrings, which --help and
    # --print_config show; reading them means parsing every class's source, so only then.
    set_parsing_settings(docstring_parse_attribute_docstrings=help_wanted(sys.argv[1:]))
    command = sys.argv[1] if len(sys.argv) > 1 else "fit"
    try:
        # exit_on_error=False: a bad option or config is one line (`option_error`), not the usage
        LaMPCLI(
            LaMPModel,
            LaMPDataModule,
            seed_everything_default=0,
            save_config_kwargs={"overwrite": True},
            subcommand=command,
            parser_kwargs={"exit_on_error": False},
        )
    except ArgumentError as error:
        raise option_error(command, error, sys.argv) from None
    finally:
        sys.argv = saved
