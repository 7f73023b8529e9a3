"""How users may spell a command's options, rewritten to what jsonargparse parses.

Dashes or underscores (`--data-dir`), bare bool flags (`--verify`, `--no_verify`), a list as
several words (`--raw a.csv b.csv`), and the flat training options of earlier releases (`--lr`
for `--training.lr`, `--dropout` for `--lora.dropout`). `lamp_pl.cli.tree` applies these before
parsing; each reads the command function's signature.
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import sys
import types
import typing
from collections.abc import Callable
from typing import Any


def type_hints(function: Callable[..., Any]) -> dict[str, Any]:
    """The parameters' types; a name imported for type checking only stays `Any` (such a
    parameter is a config section, which `build_parser` types itself)."""
    hints: dict[str, Any] = {}
    for name, param in inspect.signature(function).parameters.items():
        hint = param.annotation
        if isinstance(hint, str):
            try:
                hint = eval(hint, vars(sys.modules[function.__module__]))
            except NameError:
                hint = Any
        hints[name] = hint
    return hints


def positional(function: Callable[..., Any]) -> list[str]:
    """The function's positional-only parameters: positional arguments on the command line
    (`lamp-pl convert goemotions ...`); every other parameter is an `--option`."""
    params = inspect.signature(function).parameters.values()
    return [p.name for p in params if p.kind is inspect.Parameter.POSITIONAL_ONLY]


def underscored(arg: str) -> str:
    """`--data-dir x` as `--data_dir x`: option names may be spelled with dashes, as shells users
    expect (jsonargparse names options after the Python parameters)."""
    if not arg.startswith("--"):
        return arg
    option, sep, value = arg.partition("=")
    return "--" + option[2:].replace("-", "_") + sep + value


def settings_fields(function: Callable[..., Any]) -> dict[str, tuple[str, Any]]:
    """Each field of the function's settings parameters (a dataclass, e.g. `training:
    TrainSettings`): its flat name (and the dataclass's `aliases` of it) -> (the dotted option
    name jsonargparse gives it, its type). A name that is also a parameter, or a field of two
    settings, is left out (it stays the parameter's, or must be written dotted)."""
    hints = type_hints(function)
    found: dict[str, list[tuple[str, Any]]] = {}
    for name, hint in hints.items():
        if not (isinstance(hint, type) and dataclasses.is_dataclass(hint)):
            continue
        fields = typing.get_type_hints(hint)
        aliases = {
            field: [alias for alias, target in getattr(hint, "aliases", {}).items() if target == field]
            for field in fields
        }
        for field in dataclasses.fields(hint):
            for flat in (field.name, *aliases[field.name]):
                found.setdefault(flat, []).append((f"{name}.{field.name}", fields[field.name]))
    return {flat: places[0] for flat, places in found.items() if len(places) == 1 and flat not in hints}


def dotted_settings(function: Callable[..., Any], argv: list[str]) -> list[str]:
    """`--lr 1e-3` as `--training.lr 1e-3` for a field of a settings parameter: the flat options
    the commands took before their settings became one dataclass keep working (`--help` lists
    the dotted names)."""
    fields = settings_fields(function)
    out = []
    for arg in argv:
        option, sep, value = arg.partition("=")
        negated = option.startswith("--no_") and option[5:] in fields
        name = option[5:] if negated else option[2:]
        if not option.startswith("--") or name not in fields:
            out.append(arg)
            continue
        out.append(("--no_" if negated else "--") + fields[name][0] + sep + value)
    return out


def option_types(function: Callable[..., Any]) -> dict[str, Any]:
    """Each option's type by its name: the parameters and the dotted fields of their settings."""
    return {**type_hints(function), **dict(settings_fields(function).values())}


def bare_flags(function: Callable[..., Any], argv: list[str]) -> list[str]:
    """`--verify` alone as `--verify true` and `--no_verify` as `--verify false` for a bool
    parameter, as shell users expect of a flag (jsonargparse wants a value for every bool option)."""
    flags = {f"--{name}" for name, hint in option_types(function).items() if hint is bool}
    out: list[str] = []
    for at, arg in enumerate(argv):
        following = argv[at + 1] if at + 1 < len(argv) else "--"
        if arg.startswith("--no_") and f"--{arg[5:]}" in flags:
            out += [f"--{arg[5:]}", "false"]
            continue
        out.append(arg)
        if arg in flags and following.startswith("--"):
            out.append("true")
    return out


def list_values(function: Callable[..., Any], argv: list[str]) -> list[str]:
    """`--raw a.csv b.csv` as `--raw '["a.csv", "b.csv"]'` for a list parameter, as shell users
    expect of a list (jsonargparse reads one JSON/YAML value, or `--raw+ a.csv` per item)."""
    lists = {f"--{name}" for name, hint in option_types(function).items() if _is_list(hint)}
    out: list[str] = []
    at = 0
    while at < len(argv):
        arg = argv[at]
        out.append(arg)
        at += 1
        if arg in lists:
            values = []
            while at < len(argv) and not argv[at].startswith("--"):
                values.append(argv[at])
                at += 1
            single_json = len(values) == 1 and values[0].lstrip().startswith("[")
            out.append(values[0] if single_json else json.dumps(values))
    return out


def _is_list(hint: Any) -> bool:
    """`list[X]` or `list[X] | None`."""
    options = (
        typing.get_args(hint)
        if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union
        else (hint,)
    )
    return any(typing.get_origin(option) is list for option in options)
