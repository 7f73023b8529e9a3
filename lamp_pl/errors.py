"""User-facing errors of lamp_pl, and how the entry points report them: one line, no traceback.

Every error a user can fix (bad data, a missing file, a damaged cache, a failed download) derives
from `LaMPError`. The command-line entry points run inside `one_line_errors`, which prints
``lamp-pl <command>: error: <message>`` on stderr and exits with status 2; the full traceback is
shown only with ``--verbose`` or ``LAMP_PL_VERBOSE=1``. Anything else (a bug) keeps its traceback.
"""

from __future__ import annotations

import contextlib
import os
import sys
import traceback
from collections.abc import Iterator

EXIT_CODE = 2
VERBOSE_ENV = "LAMP_PL_VERBOSE"


class LaMPError(Exception):
    """Base of the errors a user can act on; the message says what is wrong and where."""


class MissingDataError(LaMPError, FileNotFoundError):
    """A data file a stage needs is absent (still a FileNotFoundError for older callers)."""

    def __str__(self) -> str:  # OSError would format (errno, strerror) pairs; keep the message
        return str(self.args[0]) if self.args else ""


class NoSpaceError(LaMPError, OSError):
    """The disk (or a file-size limit) ran out while writing a cache."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


_BOOLEAN = {"true", "false", "yes", "no", "1", "0"}


def _verbose_flags(argv: list[str]) -> list[int]:
    """Positions of a bare ``--verbose``; ``--verbose false`` is Lightning's own option of
    `validate`/`test` (it takes a value) and is left alone."""
    return [
        i
        for i, arg in enumerate(argv)
        if arg == "--verbose" and (i + 1 == len(argv) or argv[i + 1].lower() not in _BOOLEAN)
    ]


def verbose_requested(argv: list[str] | None = None) -> bool:
    """Whether the user asked for tracebacks (a bare `--verbose` in argv, or the environment variable)."""
    return bool(_verbose_flags(argv or [])) or os.environ.get(VERBOSE_ENV, "") not in ("", "0")


def one_line(error: BaseException) -> str:
    """The message of `error` with its whitespace (newlines included) collapsed."""
    return " ".join(str(error).split()) or type(error).__name__


@contextlib.contextmanager
def one_line_errors(command: str, argv: list[str] | None = None) -> Iterator[None]:
    """Run a command; turn a `LaMPError` into one line on stderr and `SystemExit(2)`.

    Args:
        command: what the user typed after ``lamp-pl`` (``fit``, ``index``...), for the prefix.
        argv: the command's arguments; ``--verbose`` among them keeps the traceback.
    """
    try:
        yield
    except LaMPError as error:
        if verbose_requested(argv):
            traceback.print_exc()
        print(f"lamp-pl {command}: error: {one_line(error)}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None


def strip_verbose(argv: list[str]) -> list[str]:
    """`argv` without the bare ``--verbose`` flags that `one_line_errors` reads."""
    drop = set(_verbose_flags(argv))
    return [arg for i, arg in enumerate(argv) if i not in drop]


__all__ = [
    "EXIT_CODE",
    "LaMPError",
    "MissingDataError",
    "NoSpaceError",
    "one_line",
    "one_line_errors",
    "strip_verbose",
    "verbose_requested",
]
