"""`lamp-pl`: one command tree for training (LightningCLI) and every other command.

Each command is a typed function with a Google docstring, named here by import path so that
`lamp-pl --help` and the commands that do not train import neither Lightning nor a model. A
command's `--help` is built by jsonargparse from its signature and docstring. A command whose
function has a `data` parameter reads the same LightningCLI-style `--config` files as `fit` (only
their `data:` section; repeat `--config` to compose, later files win) and `--data.x` overrides.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import json
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamp_pl.errors import LaMPError, one_line_errors, strip_verbose

# The four Lightning loops go to `lamp_pl.lightning_cli` (LightningCLI parses them).
TRAINING = ("fit", "validate", "test", "predict")


@dataclass(frozen=True)
class Command:
    """One entry of the command tree."""

    target: str
    """`module:function` (imported only when the command runs)."""
    summary: str
    """One line for `lamp-pl --help`: the function's docstring summary (tests keep them equal)."""
    raw: bool = False
    """The function parses its own `argv` (list-valued axes, pass-through overrides) and returns
    the exit code."""


COMMANDS: dict[str, Command] = {
    "fit": Command(
        "lamp_pl.lightning_cli:run_training", "Train the model (Lightning `fit`: trainer, model and data options)."
    ),
    "validate": Command(
        "lamp_pl.lightning_cli:run_training", "Evaluate on the validation split (Lightning `validate`)."
    ),
    "test": Command(
        "lamp_pl.lightning_cli:run_training", "Evaluate and write predictions on the test split (Lightning `test`)."
    ),
    "predict": Command(
        "lamp_pl.lightning_cli:run_training", "Write predictions without metrics (Lightning `predict`)."
    ),
    "download": Command("lamp_pl.data.commands:download", "Download the official files of one LaMP task."),
    "demo": Command(
        "lamp_pl.demo.prepare:demo",
        "Prepare the offline demo's tokenizer and encoder folders (then fit configs/demo.yaml).",
    ),
    "check-data": Command("lamp_pl.data.commands:check_data", "Validate a LaMP data folder and print a JSON summary."),
    "synthetic": Command(
        "lamp_pl.data.commands:synthetic", "Write a synthetic LaMP task folder (offline demo and tests)."
    ),
    "index": Command("lamp_pl.commands:index", "Build (or verify) every data cache of a config; print a JSON summary."),
    "inspect": Command(
        "lamp_pl.commands:inspect", "Print what the model reads for one question: query, items, prompt."
    ),
    "grid": Command(
        "lamp_pl.grid:main", "Fit and test every combination of the study's axes; write one table.", raw=True
    ),
    "evaluate": Command(
        "lamp_pl.evaluate:evaluate",
        'The official metrics of a predictions file (e.g. ``{"accuracy": ..., "f1": ...}`` for LaMP-1).',
    ),
}
# Commands that parse their own arguments (list-valued axes, several sub-forms, pass-through
# flags); each shim's --help is its argparse usage and its function's docstring.
COMMANDS.update(
    {
        "export": Command("lamp_pl.export:main", "Export a checkpoint as a plain Hugging Face model folder.", raw=True),
        "score-items": Command(
            "lamp_pl.learned.commands:score_items_main",
            "Score each candidate profile item by the generator's likelihood of the gold.",
            raw=True,
        ),
        "fit-retriever": Command(
            "lamp_pl.learned.commands:fit_retriever_main",
            "Distil item utilities into the dense retriever (ROPG-KD).",
            raw=True,
        ),
        "ropg-kd": Command(
            "lamp_pl.learned.commands:ropg_kd_main",
            "Run the whole ROPG-KD recipe: fit, score, train the retriever, re-index, re-fit, test.",
            raw=True,
        ),
        "ropg": Command(
            "lamp_pl.learned.commands:ropg_main",
            "The ROPG recipe with the retriever trained by distillation or policy gradient (--method kd|rl).",
            raw=True,
        ),
        "score-retrievers": Command(
            "lamp_pl.learned.rspg_commands:score_retrievers_main",
            "Score each question's prompt under each retriever of a pool (RSPG utilities, oracle).",
            raw=True,
        ),
        "fit-selector": Command(
            "lamp_pl.learned.rspg_commands:fit_selector_main",
            "Train the RSPG retriever selector (Pre or Post) on per-retriever utilities.",
            raw=True,
        ),
        "select": Command(
            "lamp_pl.learned.rspg_commands:select_main",
            "Write each question's selected retriever for `retrieval.retriever: selected`.",
            raw=True,
        ),
        "fit-task-adapter": Command(
            "lamp_pl.adapters.commands:fit_task_adapter_main",
            "Train the task-level LoRA that two-stage per-user adapters start from.",
            raw=True,
        ),
        "attribute": Command(
            "lamp_pl.learned.commands:attribute_main",
            "Attribute each retrieved item: leave-one-out likelihood change and attention share.",
            raw=True,
        ),
        "convert": Command(
            "lamp_pl.data.annotators:main",
            "Convert GoEmotions or Unhealthy Conversations raw files to per-annotator LaMP tasks.",
            raw=True,
        ),
        "fit-users": Command(
            "lamp_pl.adapters.commands:fit_users_main",
            "Train one LoRA adapter per user on the user's own profile items.",
            raw=True,
        ),
        "test-users": Command(
            "lamp_pl.adapters.commands:test_users_main",
            "Evaluate each question with its own user's adapter (alone or with retrieval).",
            raw=True,
        ),
    }
)

# Sections of a LightningCLI config that the non-training commands accept and ignore.
OTHER_SECTIONS = ("seed_everything", "trainer", "model", "optimizer", "lr_scheduler", "ckpt_path")
# Errors a command reports as one line and exit code 1 (bad input, missing files, unknown names).
USER_ERRORS: tuple[type[BaseException], ...] = (OSError, ValueError, LookupError)


def load(command: Command) -> Callable[..., Any]:
    """Import the function behind a command."""
    module, _, name = command.target.partition(":")
    return getattr(importlib.import_module(module), name)


def usage() -> str:
    """`lamp-pl --help`: every command with its one-line summary."""
    width = max(map(len, COMMANDS))
    lines = [
        "usage: lamp-pl <command> [--config FILE ...] [options]",
        "",
        "Retrieval-augmented personalization on LaMP, with PyTorch Lightning.",
        "",
        "commands:",
    ]
    lines += [f"  {name.ljust(width)}  {command.summary}" for name, command in COMMANDS.items()]
    lines += ["", "`lamp-pl <command> --help` lists a command's options."]
    return "\n".join(lines)


def build_parser(name: str, function: Callable[..., Any]):
    """A jsonargparse parser for `function`: its parameters, plus the config's data section when
    it takes `data` (a `LaMPDataModule`, parsed exactly as `fit` parses it)."""
    from jsonargparse import ActionConfigFile, ArgumentParser, set_parsing_settings

    # Dataclass fields document themselves with attribute docstrings; show those in --help.
    set_parsing_settings(docstring_parse_attribute_docstrings=True)

    doc = inspect.getdoc(function) or ""
    parser = ArgumentParser(prog=f"lamp-pl {name}", description=doc.split("\n\n")[0])
    reads_data = "data" in inspect.signature(function).parameters
    if reads_data:
        from lamp_pl.datamodule import LaMPDataModule

        parser.add_argument(
            "--config",
            action=ActionConfigFile,
            help="LightningCLI-style config; repeat to compose (later files win); its data section is read",
        )
        parser.add_class_arguments(LaMPDataModule, "data", instantiate=True)
        for section in OTHER_SECTIONS:
            parser.add_argument(f"--{section}", type=Any, default=None, help=argparse.SUPPRESS)
    parser.add_function_arguments(function, skip={"data"} if reads_data else None)
    return parser


def underscored(arg: str) -> str:
    """`--data-dir x` as `--data_dir x`: option names may be spelled with dashes, as shells users
    expect (jsonargparse names options after the Python parameters)."""
    if not arg.startswith("--"):
        return arg
    option, sep, value = arg.partition("=")
    return "--" + option[2:].replace("-", "_") + sep + value


def bare_flags(function: Callable[..., Any], argv: list[str]) -> list[str]:
    """`--verify` alone as `--verify true` for a bool parameter, as shell users expect of a flag
    (jsonargparse wants a value for every bool option)."""
    flags = {
        f"--{name}" for name, p in inspect.signature(function).parameters.items() if p.annotation in (bool, "bool")
    }
    out: list[str] = []
    for at, arg in enumerate(argv):
        out.append(arg)
        following = argv[at + 1] if at + 1 < len(argv) else "--"
        if arg in flags and following.startswith("--"):
            out.append("true")
    return out


def instantiate(parser: Any, config: Any) -> Any:
    """`parser.instantiate` (jsonargparse >= 4.49; `instantiate_classes` before, now deprecated)."""
    method = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return method(config)


def run_function(name: str, function: Callable[..., Any], argv: list[str]) -> int:
    """Parse `argv` for `function`, call it, print what it returns (JSON for dicts, one line per
    list entry), and turn a user error into one line on stderr with exit code 1."""
    parser = build_parser(name, function)
    config = parser.parse_args(bare_flags(function, [underscored(arg) for arg in argv]))
    try:
        init = instantiate(parser, config)
        params = inspect.signature(function).parameters
        result = function(**{key: init[key] for key in params if key in init})
    except LaMPError:
        raise  # one line and exit status 2, from `one_line_errors` in `main`
    except USER_ERRORS as error:
        print(f"lamp-pl {name}: error: {error}", file=sys.stderr)
        return 1
    if isinstance(result, int) and not isinstance(result, bool):
        return result
    if isinstance(result, dict):
        print(json.dumps(result, indent=2, default=str))
    elif isinstance(result, list | tuple):
        for entry in result:
            print(entry)
    elif isinstance(result, str | Path):
        print(result)
    return 0


def main(args: list[str] | None = None) -> int | None:
    """Entry point of the `lamp-pl` console script; `args` defaults to `sys.argv[1:]`.

    A `LaMPError` (bad data, a damaged or missing cache, no space) ends the command with one line
    on stderr and exit status 2; `--verbose` or `LAMP_PL_VERBOSE=1` keeps the traceback.
    """
    argv = sys.argv[1:] if args is None else list(args)
    with one_line_errors(argv[0] if argv else "lamp-pl", argv):
        stripped = strip_verbose(argv)
        return _dispatch(stripped, None if args is None and stripped == argv else stripped)


def _dispatch(argv: list[str], args: list[str] | None) -> int | None:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"{usage()}\n\nlamp-pl: error: unknown command {argv[0]!r}", file=sys.stderr)
        return 2
    if argv[0] in TRAINING:
        load(command)(args)  # None: LightningCLI reads sys.argv itself
        return 0
    if command.raw:
        return load(command)(argv[1:])
    return run_function(argv[0], load(command), argv[1:])
