"""`lamp-pl`: one command tree for training (LightningCLI) and every other command.

Each command is a typed function with a Google docstring, named here by import path so that
`lamp-pl --help` and the commands that do not train import neither Lightning nor a model. A
command's `--help` is built by jsonargparse from its signature and docstring. A command whose
function has a `data` parameter reads the same LightningCLI-style `--config` files as `fit` (their
`data:` section, and their `model:` section when it also takes `model`, linked as `fit` links
them; repeat `--config` to compose, later files win) with `--data.x` / `--model.x` overrides.
Positional-only parameters are positional arguments; every other parameter is an option.
"""

from __future__ import annotations

import importlib
import inspect
import json
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lamp_pl.cli.spelling import (
    bare_flags,
    dotted_settings,
    list_values,
    positional,
    type_hints,
    underscored,
)
from lamp_pl.errors import one_line_errors, strip_verbose

# The four Lightning loops go to `lamp_pl.cli.train` (LightningCLI parses them).
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
        "lamp_pl.cli.train:run_training", "Train the model (Lightning `fit`: trainer, model and data options)."
    ),
    "validate": Command("lamp_pl.cli.train:run_training", "Evaluate on the validation split (Lightning `validate`)."),
    "test": Command(
        "lamp_pl.cli.train:run_training", "Evaluate and write predictions on the test split (Lightning `test`)."
    ),
    "predict": Command("lamp_pl.cli.train:run_training", "Write predictions without metrics (Lightning `predict`)."),
    "download": Command("lamp_pl.cli.data:download", "Download the official files of one LaMP task."),
    "demo": Command(
        "lamp_pl.cli.demo:demo",
        "Prepare the offline demo's tokenizer and encoder folders (then `lamp-pl fit --config demo`).",
    ),
    "configs": Command(
        "lamp_pl.cli.configs:main", "List the shipped configs, or print one (to copy and edit).", raw=True
    ),
    "check-data": Command("lamp_pl.cli.data:check_data", "Validate a LaMP data folder and print a JSON summary."),
    "synthetic": Command("lamp_pl.cli.data:synthetic", "Write a synthetic LaMP task folder (offline demo and tests)."),
    "index": Command(
        "lamp_pl.cli.caches:index", "Build (or verify) every data cache of a config; print a JSON summary."
    ),
    "inspect": Command(
        "lamp_pl.cli.caches:inspect", "Print what the model reads for one question: query, items, prompt."
    ),
    "grid": Command(
        "lamp_pl.cli.grid:main", "Fit and test every combination of the study's axes; write one table.", raw=True
    ),
    "evaluate": Command(
        "lamp_pl.cli.evaluate:evaluate",
        'The official metrics of a predictions file (e.g. ``{"accuracy": ..., "f1": ...}`` for LaMP-1).',
    ),
}
COMMANDS.update(
    {
        "export": Command("lamp_pl.cli.models:export", "Export a checkpoint as a plain Hugging Face model folder."),
        "score-items": Command(
            "lamp_pl.cli.learned:score_items",
            "Score each candidate profile item by the generator's likelihood of the gold.",
        ),
        "fit-retriever": Command(
            "lamp_pl.cli.learned:fit_retriever",
            "Train the encoder on generator utilities (ROPG-KD) and save it for `retrieval.encoder`.",
        ),
        "fit-retriever-rl": Command(
            "lamp_pl.cli.learned:fit_retriever_rl",
            "Train the encoder by policy gradient (ROPG-RL) and save it for `retrieval.encoder`.",
            raw=True,
        ),
        "ropg-kd": Command(
            "lamp_pl.cli.ropg_kd:run",
            "Run the whole ROPG-KD recipe: fit, score, train the retriever, re-index, re-fit, test.",
        ),
        "ropg": Command(
            "lamp_pl.cli.ropg_kd:ropg",
            "The ROPG recipe with the retriever trained by distillation or policy gradient (--method kd|rl).",
        ),
        "score-retrievers": Command(
            "lamp_pl.cli.rspg:score_retrievers",
            "Score each question's prompt under each retriever of a pool (RSPG utilities, oracle).",
        ),
        "fit-selector": Command(
            "lamp_pl.cli.rspg:fit_selector",
            "Train the RSPG retriever selector (Pre or Post) on per-retriever utilities.",
        ),
        "select": Command(
            "lamp_pl.cli.rspg:select",
            "Write each question's selected retriever for `retrieval.retriever: selected`.",
        ),
        "attribute": Command(
            "lamp_pl.cli.learned:attribute",
            "Attribute each retrieved item: leave-one-out likelihood change and attention share.",
        ),
        "convert": Command(
            "lamp_pl.cli.data:convert",
            "Convert GoEmotions or Unhealthy Conversations raw files to per-annotator LaMP tasks.",
        ),
        "demo-longlamp": Command(
            "lamp_pl.cli.demo:demo_longlamp",
            "Write the LongLaMP demo: a synthetic LongLaMP-schema dataset and its tokenizer.",
        ),
        "demo-annotators": Command(
            "lamp_pl.cli.demo:demo_annotators",
            "Write the annotator demo: a synthetic GoEmotions-style task and a tiny T5 folder.",
        ),
        "fit-users": Command(
            "lamp_pl.cli.adapters:fit_users",
            "Train one LoRA adapter per user of a split over the config's frozen base model.",
        ),
        "fit-task-adapter": Command(
            "lamp_pl.cli.adapters:fit_task_adapter",
            "Train the task-level LoRA that two-stage per-user adapters start from.",
        ),
        "test-users": Command(
            "lamp_pl.cli.adapters:test_users",
            "Score a split with per-user adapters and write `predictions_<split>.json` / `metrics_<split>.json`.",
        ),
    }
)


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
    lines += ["", "lamp-pl <command> --help lists a command's options; lamp-pl configs lists the shipped configs."]
    return plain_help("\n".join(lines))


def build_parser(name: str, function: Callable[..., Any], documented: bool = True):
    """The jsonargparse parser of a command: the function's parameters (help from its docstring),
    plus the config's data section when it takes `data` and its model section, linked to the
    data section as `fit` links them, when it also takes `model` (see `lamp_pl.cli.config`).
    `documented=False` leaves out the dataclass fields' attribute docstrings (reading them parses
    the classes' source): for a run that prints no help."""
    from jsonargparse import ArgumentParser, set_parsing_settings

    from lamp_pl.cli.config import add_sections

    # Dataclass fields document themselves with attribute docstrings; show those in --help.
    set_parsing_settings(docstring_parse_attribute_docstrings=documented)

    doc = inspect.getdoc(function) or ""
    # exit_on_error=False: a bad option or config is one line (see `parse_command`), not the usage.
    parser = ArgumentParser(
        prog=f"lamp-pl {name}",
        description=doc.split("\n\n")[0],
        exit_on_error=False,
        formatter_class=plain_formatter(),
    )
    params = inspect.signature(function).parameters
    sections: set[str] = {section for section in ("data", "model") if section in params}
    if sections:
        add_sections(parser, model="model" in sections, taken=frozenset(params))
    front = positional(function)
    if front:
        hints, described = type_hints(function), parameter_docs(function)
        for param in front:
            parser.add_argument(param, type=hints[param], help=described.get(param))
    skip: set[Any] = sections.union(front)
    parser.add_function_arguments(function, skip=skip or None)
    return parser


def plain_help(text: str) -> str:
    """Help text as a terminal shows it: the docstrings' reStructuredText / Markdown code quotes
    (````x````, ```x```) dropped, and a bare class type (``<class 'Path'>``) shown by its name."""
    text = re.sub(r"<class\s+'(?:[\w.]+\.)?(\w+)'>", r"\1", text)
    text = re.sub(r"``(.+?)``", r"\1", text, flags=re.S)
    return re.sub(r"`([^`]+?)`", r"\1", text, flags=re.S)


def plain_formatter() -> type:
    """jsonargparse's help formatter, with its output passed through `plain_help`."""
    from jsonargparse import DefaultHelpFormatter

    class PlainHelpFormatter(DefaultHelpFormatter):
        def format_help(self) -> str:
            return plain_help(super().format_help())

    return PlainHelpFormatter


def parameter_docs(function: Callable[..., Any]) -> dict[str, str]:
    """Each parameter's description in the function's Google docstring (its `Args:` section)."""
    from docstring_parser import parse

    return {p.arg_name: p.description or "" for p in parse(inspect.getdoc(function) or "").params}


def parse_command(name: str, function: Callable[..., Any], argv: list[str]) -> tuple[Any, Any]:
    """The command's parser and `argv` parsed by it (dashes or underscores, bare bool flags,
    `--config` files or shipped config names)."""
    from argparse import ArgumentError

    from lamp_pl.cli.config import help_wanted, option_error
    from lamp_pl.shipped import resolve_config_args

    parser = build_parser(name, function, documented=help_wanted(argv))
    try:
        return parser, parser.parse_args(
            list_values(
                function,
                bare_flags(function, dotted_settings(function, resolve_config_args([underscored(a) for a in argv]))),
            )
        )
    except ArgumentError as error:
        raise option_error(name, error, argv) from None


def run_function(name: str, function: Callable[..., Any], argv: list[str]) -> int:
    """Parse `argv` for `function`, call it, print what it returns (JSON for dicts, one line per
    list entry); a user error propagates to `one_line_errors` (one line, exit status 2)."""
    from lamp_pl.cli.config import instantiate

    parser, config = parse_command(name, function, argv)
    if config.get("data") is not None:  # the tokenizer and encoder named as `index` and `fit` name them
        from lamp_pl.resolve import resolve_data_section

        resolve_data_section(config.data)
    init = instantiate(parser, config)
    front = positional(function)
    params = [key for key in inspect.signature(function).parameters if key in init and key not in front]
    result = function(*[init[key] for key in front], **{key: init[key] for key in params})
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

    Every command, the raw and the LightningCLI ones included, runs inside `one_line_errors`: a
    user error (a `LaMPError`, or an OS, decoding, JSON or refused-checkpoint error) ends it with
    one line on stderr and exit status 2; `--verbose` or `LAMP_PL_VERBOSE=1` keeps the traceback.
    """
    argv = sys.argv[1:] if args is None else list(args)
    with one_line_errors(argv[0] if argv else "lamp-pl", argv):
        stripped = strip_verbose(argv)
        code = _dispatch(stripped, None if args is None and stripped == argv else stripped)
        sys.stdout.flush()  # a closed pipe (`| head`) fails here, inside the handler, not at exit
        return code


def _dispatch(argv: list[str], args: list[str] | None) -> int | None:
    if not argv or argv[0] in ("-h", "--help"):
        print(usage())
        return 0 if argv else 2
    command = COMMANDS.get(argv[0])
    if command is None:
        print(f"{usage()}\n\nlamp-pl: error: unknown command {argv[0]!r}", file=sys.stderr)
        return 2
    if not {"-h", "--help"} & set(argv):
        from lamp_pl.cli.config import check_config_files

        # a bad config file is named before any parser reads it; `--config demo` (a shipped
        # config by name) is resolved there and by `run_training`, `parse_command` and the raw
        # commands' own parsers
        check_config_files(argv[1:])
    if argv[0] in TRAINING:
        load(command)(args)  # None: LightningCLI reads sys.argv itself
        return 0
    if command.raw:
        return load(command)(argv[1:])
    return run_function(argv[0], load(command), argv[1:])
