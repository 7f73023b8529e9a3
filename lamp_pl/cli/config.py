"""The one reader of LightningCLI config files: their data and model sections, linked as `fit`
links them.

`lamp-pl fit` (see `lamp_pl.cli.train`) and every command whose function takes `data` (and
`model`) read the same `--config` files through `add_sections`; `datamodule_from_config` and
`data_and_model` give notebooks, scripts and the recipes the same objects from Python, and
`configured_values` reads single settings out of the files for `lamp-pl grid`.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamp_pl.shipped import resolve_config

if TYPE_CHECKING:
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.module import LaMPModel
    from lamp_pl.pipeline.data import LaMPData

# The data section's values the model section takes over, so each is set once (as in `fit`).
LINKS = (("data.task", "model.task"), ("data.tokenizer", "model.tokenizer"))
# Sections of a LightningCLI config that a command without them accepts and ignores.
OTHER_SECTIONS = ("seed_everything", "trainer", "model", "optimizer", "lr_scheduler", "ckpt_path", "run_name")
CONFIG_HELP = "LightningCLI-style config file, or a shipped config's name (`lamp-pl configs` lists them); repeat to compose (later files win)"
# The option a jsonargparse error is about: `option 'data.k'` or `Parser key "data.k"`.
_KEY = re.compile(r"option '([\w.]+)'|Parser key \"([\w.]+)\"")
_ABSENT = object()
# What jsonargparse says before the reason an optional dataclass section refused a value.
_UNION_PREAMBLE = re.compile(
    r"Does not validate against any of the Union subtypes Subtypes: \[.*?\] Errors: - "
    r"(Problem with given class_path '[^']*': )?"
)


def help_wanted(argv: list[str]) -> bool:
    """Whether `argv` asks for text made from docstrings (``--help``, ``--print_config``): only
    then are the classes' attribute docstrings worth reading (it parses their source)."""
    return any(arg in ("-h", "--help") or arg.startswith("--print_config") for arg in argv)


def link_sections(parser: Any) -> None:
    """Link the data section's task and tokenizer into the model section."""
    for source, target in LINKS:
        parser.link_arguments(source, target)


def add_sections(parser: Any, model: bool = False, taken: frozenset[str] = frozenset()) -> None:
    """Give `parser` a `--config` option, the data section and, with `model`, the model section
    (a `LaMPModel`) linked to it; the other sections are ignored, but for those in `taken` (the
    command's own options, e.g. `ckpt_path`).

    Without `model` the data section is the plain `LaMPData` pipeline (same constructor as
    `fit`'s `LaMPDataModule`), so data-only commands never import Lightning; with a model, which
    needs Lightning anyway, it is the `LaMPDataModule` shell."""
    from jsonargparse import SUPPRESS, ActionConfigFile

    parser.add_argument("--config", action=ActionConfigFile, help=CONFIG_HELP)
    if model:
        from lamp_pl.lightning.datamodule import LaMPDataModule

        parser.add_class_arguments(LaMPDataModule, "data", instantiate=True)
    else:
        from lamp_pl.pipeline.data import LaMPData

        parser.add_class_arguments(LaMPData, "data", instantiate=True)
    if model:
        from lamp_pl.lightning.module import LaMPModel

        parser.add_class_arguments(LaMPModel, "model", instantiate=True)
        link_sections(parser)
    for section in OTHER_SECTIONS:
        if section not in taken and not (model and section == "model"):
            parser.add_argument(f"--{section}", type=Any, default=None, help=SUPPRESS)


def instantiate(parser: Any, config: Any) -> Any:
    """`parser.instantiate` (jsonargparse >= 4.49; `instantiate_classes` before, now deprecated)."""
    method = getattr(parser, "instantiate", None) or parser.instantiate_classes
    return method(config)


def _sections(configs: list[str | Path], overrides: list[str] | None, model: bool) -> Any:
    from jsonargparse import ArgumentParser

    parser = ArgumentParser(prog="lamp_pl config")
    add_sections(parser, model=model)
    args = [arg for path in configs for arg in ("--config", resolve_config(path))] + list(overrides or [])
    return instantiate(parser, parser.parse_args(args))


def datamodule_from_config(configs: list[str | Path], overrides: list[str] | None = None) -> LaMPData:
    """The `LaMPData` pipeline of one or more config files or shipped config names (later files win;
    e.g. ``["demo"]``) with `--data.x value` overrides, parsed as `lamp-pl index` parses them (for
    notebooks and scripts)."""
    return _sections(configs, overrides, model=False).data


def data_and_model(configs: list[str | Path], overrides: list[str] | None = None) -> tuple[LaMPDataModule, LaMPModel]:
    """The data module and the (not yet built) `LaMPModel` of config files, linked as `fit` links
    them; `overrides` may set `--data.x` and `--model.x` values."""
    sections = _sections(configs, overrides, model=True)
    return sections.data, sections.model


def option_error(command: str, error: BaseException, argv: list[str] | None = None) -> Exception:
    """A jsonargparse parse error as one `ConfigError` line: the option and what is wrong with it,
    the config file of `argv` that sets it (when one does), and where to find the options (the
    usage itself only with ``--help``)."""
    from lamp_pl.errors import ConfigError

    lines = [line.strip() for line in str(error).splitlines() if line.strip()]
    # A union type lists why each member refused the value; the first reason is the one that matters.
    lines = [line for line in lines if not line.startswith(("- Expected a <class 'NoneType'>", "Given value"))]
    message = " ".join(lines).replace("Problems parsing config: ", "")
    message = _UNION_PREAMBLE.sub("", message)
    key = _KEY.search(message)
    where = setting_file(config_paths(argv or []), key.group(1) or key.group(2)) if key else None
    return ConfigError((f"{where}: " if where else "") + f"{message} (`lamp-pl {command} --help` lists the options)")


def setting_file(configs: list[str], dotted: str) -> str | None:
    """The last of `configs` that sets the key `dotted` (``data.k``), if any."""
    import yaml

    found = None
    for config in configs:
        try:
            value: Any = yaml.safe_load(Path(config).read_text(encoding="utf-8"))
        except (OSError, ValueError, yaml.YAMLError):
            continue
        for key in dotted.split("."):
            value = value.get(key, _ABSENT) if isinstance(value, dict) else _ABSENT
        if value is not _ABSENT:
            found = config
    return found


def config_paths(argv: list[str]) -> list[str]:
    """The files given as ``--config FILE``, ``--config=FILE`` or ``-c FILE`` in `argv`, in order
    (inline YAML, ``--config '{...}'`` or ``--config 'data: {k: 1}'``, is not a file and is left out)."""
    found = []
    for at, arg in enumerate(argv):
        option, sep, value = arg.partition("=")
        if option not in ("--config", "-c"):
            continue
        value = value if sep else (argv[at + 1] if at + 1 < len(argv) else "")
        if value and not value.lstrip().startswith(("{", "[")) and "\n" not in value and ": " not in value:
            found.append(value)
    return found


def check_config_files(argv: list[str]) -> None:
    """Read every ``--config`` file of `argv` before any parser does: a missing, unreadable,
    non-UTF-8 or malformed YAML file, or one that is not a mapping of sections, is one
    `InputFileError` naming the file (jsonargparse would name ``"<unicode string>"`` after the usage)."""
    import yaml

    from lamp_pl.errors import InputFileError, reading
    from lamp_pl.shipped import resolve_config

    for path in map(resolve_config, config_paths(argv)):
        with reading(path, "config"):
            document = yaml.safe_load(Path(path).read_text(encoding="utf-8"))
        if document is not None and not isinstance(document, dict):
            kind = type(document).__name__
            raise InputFileError(f"{path}: not a config: its top level is a {kind}, not a mapping of sections")


def configured_values(configs: list[str], dotted: dict[str, str]) -> dict[str, str]:
    """For each name of `dotted` (name -> `section.key.subkey`), the value the config files set
    (later files win), as a string; names no file sets are left out."""
    import yaml

    from lamp_pl.errors import reading

    found: dict[str, str] = {}
    for config in configs:
        with reading(config, "config"):
            document = yaml.safe_load(Path(resolve_config(config)).read_text(encoding="utf-8")) or {}
        for name, path in dotted.items():
            value = document
            for key in path.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            if value is not None:
                found[name] = str(value)
    return found
