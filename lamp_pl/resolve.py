"""Resolve the model, tokenizer and encoder a command needs before any data is prepared.

Each is a hub name or a local folder. A folder must exist and hold what `from_pretrained` reads
(``config.json`` for a model or an encoder, tokenizer files for a tokenizer); a hub name must be
in the local Hugging Face cache when ``HF_HUB_OFFLINE`` is set (no request, no retry is made),
or else exist on the hub. A missing one is a `ConfigError` naming it, with an offline hint,
instead of a repo-id validation message, a missing-sentencepiece message or a hub retry loop
after the data was encoded.
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from lamp_pl.errors import ConfigError

TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "spiece.model",
    "tokenizer.model",
    "sentencepiece.bpe.model",
    "vocab.txt",
    "vocab.json",
)
"""Any one of these makes a folder a tokenizer folder."""
_REPO_ID = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
OFFLINE_HINT = "set HF_HUB_OFFLINE=1 and pass a local folder, or download it first with the hub online"


def hub_offline() -> bool:
    """Whether the Hugging Face hub may not be contacted (``HF_HUB_OFFLINE`` or
    ``TRANSFORMERS_OFFLINE`` set, as huggingface_hub reads them)."""
    try:
        from huggingface_hub import constants

        if constants.HF_HUB_OFFLINE:
            return True
    except ImportError:  # pragma: no cover -- transformers always brings huggingface_hub
        pass
    return any(
        os.environ.get(name, "").lower() in ("1", "true", "yes", "on")
        for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE")
    )


def network_errors() -> tuple[type[BaseException], ...]:
    """What asking the hub raises when it cannot be reached or answers with an error: the hub's
    HTTP error, `OSError` (requests' errors derive from it), and the HTTP client's own errors
    (huggingface_hub >= 1 speaks through httpx, 2.x through its fork httpx2; neither derives
    from `OSError`: "Name or service not known" is an ``httpx.ConnectError``)."""
    from huggingface_hub.errors import HfHubHTTPError

    errors: list[type[BaseException]] = [HfHubHTTPError, OSError]
    for client in ("httpx2", "httpx"):
        try:
            errors.append(importlib.import_module(client).HTTPError)
        except (ImportError, AttributeError):
            continue
    return tuple(errors)


def _looks_like_path(name: str) -> bool:
    """A name that can only be a folder: starts with `.`, `/` or `~`, or is no hub repo id."""
    return name.startswith((".", "/", "~")) or os.sep in name.replace("/", "", 1) or not _REPO_ID.match(name)


def _check_folder(folder: Path, what: str, needs: Iterable[str]) -> None:
    needs = tuple(needs)
    if not folder.exists():
        raise ConfigError(f"{folder}: no such {what} folder (and not a hub name); {OFFLINE_HINT}")
    if not folder.is_dir():
        raise ConfigError(f"{folder}: is a file; the {what} must be a folder or a hub name")
    if not any((folder / name).is_file() for name in needs):
        present = sorted(p.name for p in folder.iterdir())[:6]
        raise ConfigError(
            f"{folder}: not a {what} folder: it holds no {' or '.join(needs)} "
            f"(holds {', '.join(present) if present else 'nothing'})"
        )


def _check_hub(name: str, what: str, needs: Iterable[str], revision: str | None = None) -> None:
    needs = tuple(needs)
    from huggingface_hub import try_to_load_from_cache

    for filename in needs:
        try:
            if isinstance(try_to_load_from_cache(name, filename, revision=revision), str):
                return
        except ValueError:  # not a valid repo id
            raise ConfigError(f"{name}: no such {what} folder, and not a Hugging Face hub name") from None
    if hub_offline():
        raise ConfigError(
            f"{name}: {what} is not a local folder and not in the Hugging Face cache, and HF_HUB_OFFLINE "
            "is set (no download tried): pass a local folder, or download it first with the hub online"
        )
    from huggingface_hub import file_exists

    try:
        if any(file_exists(name, filename, revision=revision) for filename in needs):
            return
    except network_errors() as error:
        detail = " ".join(str(error).split()) or type(error).__name__
        raise ConfigError(
            f"{name}: cannot reach the Hugging Face hub for this {what} ({detail}); {OFFLINE_HINT}"
        ) from None
    raise ConfigError(f"{name}: no such {what} on the Hugging Face hub (no {' or '.join(needs)}); check the name")


def resolve(name: Any, what: str, needs: Iterable[str], revision: str | None = None) -> None:
    """Check that the `what` named `name` (folder or hub name) exists and holds one of `needs`.

    Raises:
        ConfigError: naming `name`, with an offline hint.
    """
    if name is None or not str(name).strip():
        raise ConfigError(f"no {what} given")
    name = str(name)
    folder = Path(name).expanduser()
    if folder.exists() or _looks_like_path(name):
        _check_folder(folder, what, needs)
    else:
        _check_hub(name, what, needs, revision)


def resolve_model(name: Any, random_init: Any = None) -> None:
    """The generator `model.model_name_or_path` (nothing to load when `random_init` builds it)."""
    if random_init is None:
        resolve(name, "model", ["config.json"])


def resolve_tokenizer(name: Any) -> None:
    """`data.tokenizer`: a folder with tokenizer files, a hub name, a `synthetic:` tokenizer, or a
    `tiktoken:<encoding>` (a served model's, checked by name; tiktoken fetches its file once)."""
    if str(name).startswith("tiktoken:"):
        try:
            import tiktoken
        except ImportError:
            raise ConfigError(f"data.tokenizer {name!r} needs tiktoken: pip install 'lamp_pl[served]'") from None
        encoding = str(name).removeprefix("tiktoken:")
        if encoding not in tiktoken.list_encoding_names():
            raise ConfigError(
                f"data.tokenizer {name!r}: unknown tiktoken encoding; choose one of "
                f"{sorted(tiktoken.list_encoding_names())}"
            )
    elif not str(name).startswith("synthetic:"):
        resolve(name, "tokenizer", TOKENIZER_FILES)


def uses_encoder(retrieval: Any, k: Any = 1) -> bool:
    """Whether the retrieval settings (a `RetrievalConfig` or its dict) encode with `encoder`."""

    def get(field: str, default: Any) -> Any:
        value = retrieval.get(field, default) if hasattr(retrieval, "get") else getattr(retrieval, field, default)
        return default if value is None else value

    retriever = get("retriever", "contriever")
    if k == 0 or retriever == "none":
        return False
    dense = ("contriever", "recency_contriever")
    if retriever == "mixed":
        return get("mixed_inputs", "contriever") in dense or get("mixed_outputs", "bm25") in dense
    return retriever in dense


def resolve_encoder(retrieval: Any, k: Any = 1) -> None:
    """`data.retrieval.encoder`, when the retriever encodes."""
    if retrieval is not None and uses_encoder(retrieval, k):
        get = retrieval.get if hasattr(retrieval, "get") else lambda f, d=None: getattr(retrieval, f, d)
        resolve(get("encoder", "facebook/contriever"), "encoder", ["config.json"], get("revision", None))


def resolve_data_section(data: Any) -> None:
    """The tokenizer and encoder of a data section (a `LaMPDataModule` or its parsed namespace)."""

    def get(field: str, default: Any = None) -> Any:
        return data.get(field, default) if hasattr(data, "get") else getattr(data, field, default)

    resolve_tokenizer(get("tokenizer_name", None) or get("tokenizer", "google/flan-t5-base"))
    resolve_encoder(get("retrieval", None), get("k", 1))


__all__ = [
    "TOKENIZER_FILES",
    "hub_offline",
    "resolve",
    "resolve_data_section",
    "resolve_encoder",
    "resolve_model",
    "resolve_tokenizer",
    "uses_encoder",
]
