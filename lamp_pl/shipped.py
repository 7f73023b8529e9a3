"""The configs shipped inside the package (`lamp_pl/configs/`), found by name as well as by path.

A config is named by its path under the shipped folder without the extension: ``demo``,
``task/LaMP_4``, ``retriever/contriever``, ``recipes/lamp_main_table``. A name may also carry its
``.yaml``/``.yml`` extension, or the ``configs/`` prefix of the repository layout the package had
before 0.2 (``configs/task/LaMP_4.yaml``). A file that exists always wins over a shipped config of
the same name, so a user's edited copy is read in place of the original.

The folder is located with `importlib.resources` (never relative to a source tree), so the same
names work from a clone, an editable install and an installed wheel. Paths inside the configs
(``demo_data``, ``data/LaMP_4``, ``indexes``) stay relative to the user's current folder.
"""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

from lamp_pl.errors import ConfigError

SUFFIXES = (".yaml", ".yml")
RECIPES = "recipes"
# What a name (as opposed to inline YAML given to --config) looks like.
_NAME = re.compile(r"^[\w./-]+$")
_OLD_PREFIX = "configs/"


def shipped_root() -> Path:
    """The folder of the shipped configs inside the installed package.

    The package is installed as files (a wheel, an editable install or a clone), so the resource
    is a real folder that jsonargparse and LightningCLI can open by path."""
    return Path(str(files("lamp_pl").joinpath("configs")))


def shipped_names(folder: str | None = None) -> list[str]:
    """Every shipped config's name (``task/LaMP_4``), sorted; with `folder` (e.g. ``recipes``)
    only those under it, named without the folder."""
    root = shipped_root()
    base = root / folder if folder else root
    names = {p.relative_to(base).with_suffix("").as_posix() for s in SUFFIXES for p in base.rglob(f"*{s}")}
    return sorted(names)


def _candidates(name: str, root: Path) -> list[Path]:
    stem = name[len(_OLD_PREFIX) :] if name.startswith(_OLD_PREFIX) else name
    if stem.endswith(SUFFIXES):
        return [root / stem]
    return [root / f"{stem}{suffix}" for suffix in SUFFIXES]


def find_shipped(name: str, folder: str | None = None) -> Path | None:
    """The shipped file `name` stands for (under `folder` when given), or None."""
    if not _NAME.match(name) or ".." in Path(name).parts:
        return None
    root = shipped_root() / folder if folder else shipped_root()
    return next((path for path in _candidates(name, root) if path.is_file()), None)


def resolve_config(name: str | Path, option: str = "--config", folder: str | None = None) -> str:
    """`name` itself when it is an existing file (or inline YAML), else the shipped config it names.

    Args:
        name: A path, or a shipped config's name (``demo``, ``task/LaMP_4``, ``model/seq2seq.yaml``).
        option: The option it was given to, for the error message.
        folder: Look only under this shipped folder (``recipes`` for ``--recipe``).

    Raises:
        ConfigError: Neither a file nor a shipped name: one line listing the shipped names.
    """
    text = str(name)
    if Path(text).is_file() or not _NAME.match(text):
        return text  # a user's file wins; inline YAML (`--config '{...}'`) is jsonargparse's to read
    found = find_shipped(text, folder)
    if found is None:
        raise unknown(text, option, folder)
    return str(found)


def unknown(name: str, option: str, folder: str | None = None) -> ConfigError:
    """The one-line error of a name that is neither a file nor a shipped config: it lists the names."""
    names = ", ".join(shipped_names(folder))
    where = f"{option} {name}".strip()
    return ConfigError(f"{where}: no such file and no shipped config of that name; shipped: {names}")


def resolve_config_args(argv: list[str]) -> list[str]:
    """`argv` with the value of every ``--config NAME`` / ``--config=NAME`` / ``-c NAME`` resolved
    by `resolve_config` (paths that exist are kept as given)."""
    out: list[str] = []
    at = 0
    while at < len(argv):
        arg = argv[at]
        if arg in ("--config", "-c") and at + 1 < len(argv):
            out += [arg, resolve_config(argv[at + 1])]
            at += 2
            continue
        if arg.startswith("--config="):
            arg = "--config=" + resolve_config(arg.partition("=")[2])
        out.append(arg)
        at += 1
    return out


def describe(path: Path) -> str:
    """The first comment line of a shipped config (its one-line description), or ''."""
    for line in path.read_text(encoding="utf-8").splitlines():
        if line.startswith("#"):
            return line.lstrip("#").strip()
        if line.strip():
            break
    return ""


__all__ = [
    "RECIPES",
    "describe",
    "find_shipped",
    "resolve_config",
    "resolve_config_args",
    "shipped_names",
    "shipped_root",
    "unknown",
]
