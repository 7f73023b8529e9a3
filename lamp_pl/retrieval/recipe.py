"""How a sentence-embedding model wants to be encoded: pooling, normalisation, length, prefixes.

A model folder saved by sentence-transformers says it in small JSON files: ``modules.json`` lists
the modules (Transformer, Pooling, Normalize...), ``1_Pooling/config.json`` the pooling mode,
``sentence_bert_config.json`` the maximum sequence length (and lower casing), and
``config_sentence_transformers.json`` the prompts (e5's ``query: `` / ``passage: ``). `read_recipe`
turns them into an `EncodingRecipe`; `EncodingRecipe.with_overrides` applies the ``retrieval.*``
settings on top. A folder without these files keeps Contriever's recipe (mean pooling, no
normalisation, no prefixes), so the official dense rankings are unchanged. What lamp_pl cannot
reproduce (a Dense projection, several pooling modes concatenated, prompts excluded from pooling)
is a `ConfigError`, never a silently different embedding.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from lamp_pl.errors import ConfigError

if TYPE_CHECKING:
    import torch

POOLINGS = ("mean", "cls", "last_token", "max")
"""Pooling modes lamp_pl computes (sentence-transformers' ``lasttoken`` is ``last_token``)."""
_ALIASES = {"lasttoken": "last_token", "cls_token": "cls", "mean_tokens": "mean", "max_tokens": "max"}
_HONOURED_MODULES = {"Transformer", "Pooling", "Normalize"}
# Prompt names sentence-transformers' encode_query / encode_document look for, in its order.
_QUERY_PROMPTS = ("query",)
_DOCUMENT_PROMPTS = ("document", "passage", "corpus")


@dataclass(frozen=True)
class EncodingRecipe:
    """The encoding choices that shape an embedding (all part of the index fingerprint)."""

    pooling: str = "mean"
    normalize: bool = False
    max_length: int | None = None
    """The model's declared maximum sequence length (None: not declared)."""
    query_prefix: str = ""
    item_prefix: str = ""
    lower_case: bool = False
    source: str = "default"
    """Where the recipe came from: ``sentence-transformers`` files or the ``default``."""

    def with_overrides(
        self,
        pooling: str | None = None,
        normalize: bool | None = None,
        query_prefix: str | None = None,
        item_prefix: str | None = None,
    ) -> EncodingRecipe:
        """The recipe with each setting that is not None in its place."""
        changes: dict = {"normalize": normalize, "query_prefix": query_prefix, "item_prefix": item_prefix}
        if pooling is not None:
            changes["pooling"] = pooling_mode(pooling, "retrieval.pooling")
        return replace(self, **{k: v for k, v in changes.items() if v is not None})

    def prefix(self, role: str | None) -> str:
        """The prefix of a ``query`` or an ``item`` text (none for other roles)."""
        return {"query": self.query_prefix, "item": self.item_prefix}.get(role or "", "")


def pooling_mode(value: str, where: str) -> str:
    """`value` as one of `POOLINGS`, or a one-line `ConfigError` naming `where`."""
    mode = _ALIASES.get(value, value)
    if mode not in POOLINGS:
        raise ConfigError(
            f"{where}: pooling {value!r} is not one lamp_pl computes; choose one of {', '.join(POOLINGS)}"
        )
    return mode


def pool(hidden: torch.Tensor, mask: torch.Tensor, mode: str) -> torch.Tensor:
    """Pool token states (batch, tokens, dim) of right-padded texts under their attention mask."""
    import torch

    weights = mask.unsqueeze(-1).to(hidden.dtype)
    if mode == "mean":  # Contriever's pooling
        return (hidden * weights).sum(dim=1) / weights.sum(dim=1).clamp(min=1.0)
    if mode == "cls":
        return hidden[:, 0]
    if mode == "last_token":  # right padding: the last real token is at length - 1
        last = (mask.sum(dim=1) - 1).clamp(min=0)
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last]
    if mode == "max":
        return hidden.masked_fill(weights == 0, -1e9).max(dim=1).values
    raise ConfigError(f"pooling {mode!r} is not one lamp_pl computes; choose one of {', '.join(POOLINGS)}")


def _reader(name: str, revision: str | None):
    """A function reading a small JSON file of the model (None when absent), folder or hub."""
    folder = Path(name)
    if folder.is_dir():
        return lambda file: json.loads((folder / file).read_text()) if (folder / file).is_file() else None

    def from_hub(file: str) -> dict | list | None:
        from huggingface_hub import hf_hub_download

        try:  # honours HF_HUB_OFFLINE and the local cache; a file the repository lacks is None
            return json.loads(Path(hf_hub_download(name, file, revision=revision)).read_text())
        except Exception:  # noqa: BLE001 -- no such file, no such repository, or no network: not declared
            return None

    return from_hub


def _pooling_of(config: dict, where: str) -> str:
    """The single pooling mode of a ``1_Pooling/config.json`` (new or legacy keys)."""
    if config.get("include_prompt") is False:
        raise ConfigError(f"{where}: include_prompt=false (prompt tokens left out of pooling) is not supported")
    mode = config.get("pooling_mode")
    if mode is None:
        modes = [key[len("pooling_mode_") :] for key, on in config.items() if key.startswith("pooling_mode_") and on]
        mode = modes[0] if len(modes) == 1 else (modes or ["mean_tokens"])
    if isinstance(mode, list):
        if len(mode) != 1:
            raise ConfigError(f"{where}: pooling modes {mode} are concatenated; lamp_pl computes one mode")
        mode = mode[0]
    return pooling_mode(str(mode), where)


def _read(name: str, revision: str | None, pooling_set: bool) -> EncodingRecipe:
    read = _reader(name, revision)
    modules = read("modules.json")
    if not isinstance(modules, list):
        return EncodingRecipe()
    recipe, kinds = EncodingRecipe(source="sentence-transformers"), []
    for module in modules:
        kind, path = str(module.get("type", "")).rsplit(".", 1)[-1], str(module.get("path", ""))
        kinds.append(kind)
        if kind not in _HONOURED_MODULES:
            raise ConfigError(
                f"{name}/modules.json: module {module.get('type')!r} is not one lamp_pl reproduces "
                f"({', '.join(sorted(_HONOURED_MODULES))}); its embeddings would differ from the model's"
            )
        if kind == "Transformer":
            config = read(f"{path}/sentence_bert_config.json" if path else "sentence_bert_config.json") or {}
            length = config.get("max_seq_length")
            recipe = replace(recipe, max_length=int(length) if length else None)
            recipe = replace(recipe, lower_case=bool(config.get("do_lower_case", False)))
        elif kind == "Pooling" and not pooling_set:  # a set retrieval.pooling replaces the folder's
            where = f"{name}/{path}/config.json"
            recipe = replace(recipe, pooling=_pooling_of(read(f"{path}/config.json") or {}, where))
        elif kind == "Normalize":
            recipe = replace(recipe, normalize=True)
    if "Pooling" not in kinds and not pooling_set:
        raise ConfigError(f"{name}/modules.json declares no Pooling module; set retrieval.pooling")
    prompts = (read("config_sentence_transformers.json") or {}).get("prompts") or {}
    query = next((prompts[p] for p in _QUERY_PROMPTS if prompts.get(p)), "")
    document = next((prompts[p] for p in _DOCUMENT_PROMPTS if prompts.get(p)), "")
    return replace(recipe, query_prefix=query, item_prefix=document)


@functools.lru_cache(maxsize=64)
def _read_hub(name: str, revision: str | None, pooling_set: bool) -> EncodingRecipe:
    return _read(name, revision, pooling_set)


def read_recipe(name: str, revision: str | None = None, pooling_set: bool = False) -> EncodingRecipe:
    """The recipe a model declares in its sentence-transformers files, else Contriever's.

    Args:
        name: a model folder or a hub name (its files are fetched like the weights, offline from
            the local cache when ``HF_HUB_OFFLINE=1``).
        revision: the hub revision.
        pooling_set: ``retrieval.pooling`` is set, so the folder's pooling is not read (nor refused).

    Raises:
        ConfigError: the model declares what lamp_pl cannot reproduce.
    """
    if Path(name).is_dir():  # a folder is read each time: it may be replaced in place
        return _read(name, revision, pooling_set)
    return _read_hub(name, revision, pooling_set)


__all__ = ["POOLINGS", "EncodingRecipe", "pool", "pooling_mode", "read_recipe"]
