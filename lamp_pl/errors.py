"""User-facing errors of lamp_pl, and the one boundary every command runs inside.

Every error a user can fix (bad data, a missing file, a damaged cache, a failed download, a
setting that cannot work) derives from `LaMPError`. Every command of ``lamp-pl`` runs inside
`one_line_errors`, which prints ``lamp-pl <command>: error: <path or name>: <what>`` on stderr
and exits with status 2. Besides `LaMPError`, the OS, decoding, JSON and refused-checkpoint
errors that reading the user's files, folders, configs and checkpoints raises are user errors
too (`user_message` words them); the full traceback is shown only with ``--verbose`` or
``LAMP_PL_VERBOSE=1``. Anything else is a bug and keeps its traceback (exit status 1).
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import pickle
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


class ConfigError(LaMPError, ValueError):
    """A setting, argument or option value that cannot work (still a ValueError for callers)."""


class InputFileError(LaMPError, OSError):
    """A user-given file or folder that cannot be read (missing, unreadable, not UTF-8, not JSON)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


class CheckpointError(LaMPError, ValueError):
    """A checkpoint that lamp_pl refuses to load: missing, not a checkpoint, or holding pickled
    objects (never loaded with ``weights_only=False``)."""


class OtherRankFailed(LaMPError):
    """Raised on the healthy ranks of a distributed job when another rank failed: each of them
    prints one line naming the rank that failed and its error, the failed rank its own error."""


PICKLED = "{path} holds pickled objects; lamp_pl loads weights only and will not run them"
_OS_HINTS = {
    errno.ENOSPC: "free some space or point the cache elsewhere",
    errno.EDQUOT: "free some space or point the cache elsewhere",
    errno.EFBIG: "free some space or point the cache elsewhere",
    errno.EACCES: "check the permissions",
    errno.EROFS: "the disk is read-only: point the cache elsewhere",
}
_BOOLEAN = {"true", "false", "yes", "no", "1", "0"}


def is_weights_only_refusal(error: BaseException) -> bool:
    """Whether `error` is torch's refusal to unpickle an object with ``weights_only=True``."""
    return isinstance(error, pickle.UnpicklingError) and "weights only load failed" in str(error).lower()


def os_error_message(error: OSError) -> str:
    """``<path>: <what>`` for an `OSError` (with a hint for a full or read-only disk)."""
    what = error.strerror or str(error) or type(error).__name__
    names = [str(n) for n in (error.filename, error.filename2) if n is not None]
    hint = _OS_HINTS.get(error.errno or 0)
    return ": ".join([*(names[:1] or []), what]) + (f" ({hint})" if hint else "")


def user_message(error: BaseException) -> str | None:
    """The one-line message of a user error, or None when `error` is a bug.

    User errors: `LaMPError`; any `OSError` (a missing or unreadable file, a full or read-only
    disk); `UnicodeDecodeError` and `json.JSONDecodeError` (a user file that is not UTF-8 text or
    not JSON); torch's refusal of a checkpoint with pickled objects (worded by lamp_pl, never with
    torch's advice to load it unsafely).
    """
    if isinstance(error, LaMPError):
        return one_line(error)
    if is_weights_only_refusal(error):
        return PICKLED.format(path="the checkpoint")
    if isinstance(error, OSError):
        return one_line(os_error_message(error))
    if isinstance(error, UnicodeDecodeError):
        return one_line(f"not UTF-8 text ({error.reason} at byte {error.start}): save the file as UTF-8")
    if isinstance(error, json.JSONDecodeError):
        return one_line(f"malformed JSON: {error}")
    return None


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


def one_line(error: BaseException | str) -> str:
    """The message of `error` with its whitespace (newlines included) collapsed."""
    text = " ".join(str(error).split())
    return text or (type(error).__name__ if isinstance(error, BaseException) else "")


@contextlib.contextmanager
def one_line_errors(command: str, argv: list[str] | None = None) -> Iterator[None]:
    """Run a command; turn a user error (see `user_message`) into one line on stderr and
    `SystemExit(2)`; a bug propagates with its traceback (exit status 1). A closed pipe on
    stdout (`| head`) ends the command quietly with status 0.

    Args:
        command: what the user typed after ``lamp-pl`` (``fit``, ``index``...), for the prefix.
        argv: the command's arguments; ``--verbose`` among them keeps the traceback.
    """
    try:
        yield
    except BrokenPipeError:
        # `lamp-pl ... | head -2`: the reader has what it wanted. Quiet, as `head`'s other
        # writers are: stdout points at /dev/null so the interpreter's final flush cannot fail too.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        raise SystemExit(0) from None
    except Exception as error:  # noqa: BLE001 -- bugs are re-raised below
        message = user_message(error)
        if message is None:
            raise
        if verbose_requested(argv):
            traceback.print_exc()
        print(f"lamp-pl {command}: error: {message}", file=sys.stderr)
        raise SystemExit(EXIT_CODE) from None


@contextlib.contextmanager
def reading(path: object, what: str = "file") -> Iterator[None]:
    """Name `path` in the errors of reading it: an `OSError`, `UnicodeDecodeError`,
    `json.JSONDecodeError` or YAML error inside the block becomes an `InputFileError` naming the path."""
    try:
        yield
    except LaMPError:
        raise
    except OSError as error:
        detail = error.strerror or str(error)
        hint = _OS_HINTS.get(error.errno or 0)
        raise InputFileError(f"{path}: {detail}" + (f" ({hint})" if hint else "")) from error
    except UnicodeDecodeError as error:
        raise InputFileError(
            f"{path}: not UTF-8 text ({error.reason} at byte {error.start}; Latin-1 or another "
            f"encoding?): save the {what} as UTF-8"
        ) from error
    except json.JSONDecodeError as error:
        raise InputFileError(f"{path}: malformed JSON ({error})") from error
    except Exception as error:
        if not is_yaml_error(error):
            raise
        raise InputFileError(f"{path}: not valid YAML ({yaml_problem(error)})") from error


def is_yaml_error(error: BaseException) -> bool:
    """Whether `error` is PyYAML's (without importing yaml where none was read)."""
    return type(error).__module__.split(".")[0] == "yaml"


def yaml_problem(error: BaseException) -> str:
    """PyYAML's problem and where it is (``line L, column C``), without its ``"<unicode string>"``."""
    mark = getattr(error, "problem_mark", None) or getattr(error, "context_mark", None)
    problem = getattr(error, "problem", None) or getattr(error, "context", None) or one_line(error)
    where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark is not None else ""
    return f"{problem}{where}"


def strip_verbose(argv: list[str]) -> list[str]:
    """`argv` without the bare ``--verbose`` flags that `one_line_errors` reads."""
    drop = set(_verbose_flags(argv))
    return [arg for i, arg in enumerate(argv) if i not in drop]


__all__ = [
    "EXIT_CODE",
    "PICKLED",
    "CheckpointError",
    "ConfigError",
    "InputFileError",
    "LaMPError",
    "MissingDataError",
    "NoSpaceError",
    "OtherRankFailed",
    "is_weights_only_refusal",
    "is_yaml_error",
    "one_line",
    "one_line_errors",
    "os_error_message",
    "reading",
    "strip_verbose",
    "user_message",
    "yaml_problem",
]
