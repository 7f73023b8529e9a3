"""The one reader of LightningCLI config files: their data and model sections, linked as `fit`
links them.

`lamp-pl fit` (see `lamp_pl.cli.train`) and every command whose function takes `data` (and
`model`) read the same `--config` files through `add_sections`; `datamodule_from_config` and
`data_and_model` give notebooks, scripts and the recipes the same objects from Python, and
`configured_values` reads single settings out of the files for `lamp-pl grid`.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lamp_pl.shipped import resolve_config

if TYPE_CHECKING:
    from lamp_pl.data.pipeline import LaMPData
    from lamp_pl.datamodule import LaMPDataModule
    from lamp_pl.module import LaMPModel

# The data section's values the model section takes over, so each is set once (as in `fit`).
LINKS = (("data.task", "model.task"), ("data.tokenizer", "model.tokenizer"))
# Sections of a LightningCLI config that a command without them accepts and ignores.
OTHER_SECTIONS = ("seed_everything", "trainer", "model", "optimizer", "lr_scheduler", "ckpt_path", "run_name")
CONFIG_HELP = "LightningCLI-style config file, or a shipped config's name (`lamp-pl configs` lists them); repeat to compose (later files win)"


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
        from lamp_pl.datamodule import LaMPDataModule

        parser.add_class_arguments(LaMPDataModule, "data", instantiate=True)
    else:
        from lamp_pl.data.pipeline import LaMPData

        parser.add_class_arguments(LaMPData, "data", instantiate=True)
    if model:
        from lamp_pl.module import LaMPModel

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
