"""mkdocs hook: the reference pages, generated at build time from the code that makes `--help`.

Each command group's page holds its commands' `--help` text exactly as `lamp-pl <command> --help`
prints it (`lamp_pl.cli.tree.build_parser` for the typed functions, the grid's own parser, and
LightningCLI for fit / validate / test / predict), and the config page lists every field of the
data and model sections from the same jsonargparse parser `fit` uses. Nothing is written to
`docs/`: the pages exist only in the build, so they cannot drift from the code.
"""

from __future__ import annotations

import contextlib
import io
import os
import types
import typing
from dataclasses import MISSING, fields, is_dataclass
from typing import Any

from mkdocs.structure.files import File, Files

# One page per command group, in this order; a command not named here lands on the last page, so
# a new command is documented even before it is given a group.
GROUPS: dict[str, tuple[str, str, tuple[str, ...]]] = {
    "training": (
        "Training and evaluation",
        "The four Lightning loops. Their options are LightningCLI's: the trainer, model and data "
        "sections of a config, each settable as `--section.field value`.",
        ("fit", "validate", "test", "predict"),
    ),
    "data": (
        "Data and caches",
        "Getting, checking and preparing data, building the caches, and looking at a prompt.",
        ("download", "check-data", "synthetic", "convert", "index", "inspect"),
    ),
    "demos": (
        "Demos",
        "Offline demos: each writes synthetic data and tiny models into a folder.",
        ("demo", "demo-annotators", "demo-longlamp"),
    ),
    "grid": (
        "Study grids",
        "`grid` parses its own arguments: unknown `--data.x`, `--model.x` and `--trainer.x` options "
        "pass through to every run of the grid.",
        ("grid",),
    ),
    "learned": (
        "Learned retrieval",
        "Item utilities, ROPG-KD and ROPG-RL, RSPG retriever selection, and attribution.",
        (
            "score-items",
            "fit-retriever",
            "fit-retriever-rl",
            "ropg-kd",
            "ropg",
            "score-retrievers",
            "fit-selector",
            "select",
            "attribute",
        ),
    ),
    "adapters": (
        "Per-user adapters",
        "Per-user LoRA adapters, one stage or two (from a task adapter).",
        ("fit-users", "fit-task-adapter", "test-users"),
    ),
    "tools": (
        "Scoring and export",
        "Scoring a predictions file, exporting a checkpoint, and any command not in another group.",
        ("evaluate", "export"),
    ),
}
WIDTH = "100"  # the help's line width (argparse reads COLUMNS)


def on_files(files: Files, config: Any) -> Files:
    """Add the generated reference pages to the build."""
    os.environ["COLUMNS"] = WIDTH
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    from lamp_pl.cli.tree import COMMANDS

    groups = {slug: list(names) for slug, (_, _, names) in GROUPS.items()}
    named = {name for names in groups.values() for name in names}
    unknown = [name for name in named if name not in COMMANDS]
    if unknown:
        raise ValueError(f"docs/hooks.py groups commands that do not exist: {unknown}")
    groups["tools"] += [name for name in COMMANDS if name not in named]
    for slug, (title, intro, _) in GROUPS.items():
        page = command_page(title, intro, groups[slug])
        files.append(File.generated(config, f"reference/commands/{slug}.md", content=page))
    files.append(File.generated(config, "reference/config.md", content=config_page()))
    return files


def command_page(title: str, intro: str, names: list[str]) -> str:
    """One group's page: each command's summary and its full `--help`."""
    from lamp_pl.cli.tree import COMMANDS

    lines = [f"# {title}", "", intro, "", "*Generated at build time from each command's `--help`.*", ""]
    for name in names:
        lines += [f"## `lamp-pl {name}`", "", markdown_text(COMMANDS[name].summary), ""]
        lines += ["```text", help_text(name).rstrip(), "```", ""]
    return "\n".join(lines)


def markdown_text(text: str) -> str:
    """A docstring's reStructuredText literals (``x``) as Markdown code."""
    return text.replace("``", "`")


def help_text(name: str) -> str:
    """What `lamp-pl <name> --help` prints."""
    from lamp_pl.cli.tree import COMMANDS, TRAINING, build_parser, load

    command = COMMANDS[name]
    if name in TRAINING:
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            load(command)([name, "--help"])
        # LightningCLI names the program after sys.argv[0] (here mkdocs' own); the console script is lamp-pl.
        text = out.getvalue()
        return "usage: lamp-pl" + text[text.index(" ", len("usage: ")) :] if text.startswith("usage: ") else text
    if command.raw:
        module = __import__(command.target.partition(":")[0], fromlist=["parser"])
        if hasattr(module, "parser"):
            return module.parser().format_help()
        # A raw command that forwards to another (fit-retriever-rl is fit-retriever --method rl):
        # its help is what it prints.
        out = io.StringIO()
        with contextlib.redirect_stdout(out), contextlib.suppress(SystemExit):
            load(command)(["--help"])
        return out.getvalue()
    return build_parser(name, load(command)).format_help()


def config_page() -> str:
    """Every field of the config's data and model sections: name, type, default and help, from the
    parser `fit` reads them with; nested settings (LoRA, served, synthetic, source) in their own tables."""
    from jsonargparse import ArgumentParser, set_parsing_settings

    from lamp_pl.cli.config import add_sections

    set_parsing_settings(docstring_parse_attribute_docstrings=True)
    parser = ArgumentParser(prog="lamp-pl fit")
    add_sections(parser, model=True)
    rows: dict[str, list[str]] = {"data": [], "model": []}
    nested: list[tuple[str, type]] = []
    for action in parser._actions:
        section = action.dest.split(".")[0]
        hint = getattr(action, "_typehint", None)
        if section not in rows or hint is None or action.help == "==SUPPRESS==" or not action.option_strings:
            continue
        if action.dest.endswith(".help"):  # `--data.source.help`: prints a class's help, not a field
            continue
        rows[section].append(field_row(action.dest, hint, action.default, action.help))
        inner = dataclass_of(hint)
        if inner is not None:
            nested.append((action.dest, inner))
    lines = [
        "# Config fields",
        "",
        "*Generated at build time from the parser `lamp-pl fit` reads configs with.*",
        "",
        "A config file is LightningCLI YAML with the sections `trainer`, `model` and `data` (and "
        "`optimizer`, `lr_scheduler`, `ckpt_path`, `seed_everything`, `run_name`). Every field below "
        "can be set in a file (`data: {k: 4}`) or on the command line (`--data.k 4`). The `trainer` "
        "section is Lightning's `Trainer`; its fields are in `lamp-pl fit --help` "
        "(see [Training and evaluation](commands/training.md)). `model.task` and `model.tokenizer` "
        "are linked from `data.task` and `data.tokenizer`: set them once, in the data section.",
        "",
    ]
    for section, title in (("data", "Data section (`LaMPDataModule`)"), ("model", "Model section (`LaMPModel`)")):
        lines += [f"## {title}", "", "| field | type | default | what it does |", "|---|---|---|---|"]
        lines += rows[section] + [""]
    for dest, cls in nested:
        lines += [
            f"## `{dest}`: `{cls.__name__}`",
            "",
            "| field | type | default | what it does |",
            "|---|---|---|---|",
        ]
        docs = attribute_docs(cls)
        try:
            hints = typing.get_type_hints(cls)
        except (NameError, TypeError):  # a name imported for type checking only: keep the written type
            hints = {}
        for item in fields(cls):
            default = item.default if item.default is not MISSING else None
            if item.default_factory is not MISSING:
                default = item.default_factory()
            lines.append(
                field_row(f"{dest}.{item.name}", hints.get(item.name, item.type), default, docs.get(item.name, ""))
            )
        lines.append("")
    return "\n".join(lines)


def field_row(name: str, hint: Any, default: Any, help_: str | None) -> str:
    """One table row: name, type, default, help on one line with pipes escaped."""

    def cell(text: Any) -> str:
        return " ".join(str(text).split()).replace("|", "\\|")

    kind = type_name(hint)
    shown = "" if default is None or str(default) == "==SUPPRESS==" else f"`{cell(default)}`"
    return f"| `{name}` | `{cell(kind)}` | {shown} | {cell(markdown_text(help_ or ''))} |"


def type_name(hint: Any) -> str:
    """A type as a reader writes it: `int | None`, `'a' | 'b'` for a Literal, `LoraSettings`."""
    if isinstance(hint, str):
        return hint
    origin, args = typing.get_origin(hint), typing.get_args(hint)
    if origin is typing.Literal:
        return " | ".join(repr(arg) for arg in args)
    if origin is typing.Union or isinstance(hint, types.UnionType):
        return " | ".join(type_name(arg) for arg in args)
    if hint is type(None):
        return "None"
    if origin is not None:
        inner = ", ".join("..." if arg is Ellipsis else type_name(arg) for arg in args)
        return f"{getattr(origin, '__name__', str(origin))}[{inner}]"
    return getattr(hint, "__name__", None) or str(hint).replace("typing.", "")


def dataclass_of(hint: Any) -> type | None:
    """The dataclass a field's type names (`X | None` included), else None."""
    options = typing.get_args(hint) or (hint,)
    for option in options:
        if isinstance(option, type) and is_dataclass(option):
            return option
    return None


def attribute_docs(cls: type) -> dict[str, str]:
    """A dataclass's field docstrings (the string under each field), as jsonargparse reads them."""
    from docstring_parser import parse_from_object

    return {p.arg_name: p.description or "" for p in parse_from_object(cls).params}
