"""Dense text encoder: any Hugging Face encoder, pooled as its model declares (`recipe`).

A folder with sentence-transformers files is encoded as ``SentenceTransformer.encode`` would
(pooling, Normalize, max_seq_length, query / document prompts); any other model keeps Contriever's
recipe: mean pooling, raw inner product.

The cost of retrieval is dominated by encoding, so this module does it the cheap way: texts are
tokenized once, sorted by token length so that each batch carries little padding, run under
`torch.inference_mode()` (half precision on GPU), and the float32 embeddings are written batch by
batch into a caller-provided array or memmap, never collected in a Python list.
"""

from __future__ import annotations

import hashlib
import itertools
import logging
import re
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

import numpy as np
from tqdm.auto import tqdm

from lamp_pl.cache import stable_hash
from lamp_pl.errors import ConfigError
from lamp_pl.models.pretrained import load_pretrained
from lamp_pl.retrieval.recipe import EncodingRecipe, pool, read_recipe

if TYPE_CHECKING:  # torch loads with the first encoder: a cached index never needs it
    import torch

logger = logging.getLogger(__name__)

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}
"""Precision name -> `torch` dtype name."""


def resolve_device(device: str = "auto") -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    import torch

    return torch.device("cuda" if torch.cuda.is_available() else "cpu") if device == "auto" else torch.device(device)


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """``auto`` = fp16 on CUDA, fp32 elsewhere (half precision on CPU is slow and inexact)."""
    import torch

    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be 'auto' or one of {sorted(PRECISIONS)}, got {precision!r}")
    return getattr(torch, PRECISIONS[precision])


def mean_pooling(hidden: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Average the token states under the attention mask (Contriever's pooling)."""
    return pool(hidden, mask, "mean")


class Encoder:
    """A Hugging Face encoder (AutoModel + AutoTokenizer) that maps texts to pooled vectors.

    Pooling, normalisation, length and prefixes are the model's own (`read_recipe`) unless given.
    Scores between two encodings are inner products; normalised vectors make them cosines.
    `forward_calls` counts model forward passes of this instance and `total_forward_calls` those
    of all instances, so callers (and tests) can check that a cached build encoded nothing.

    Args:
        name_or_path: hub name (``facebook/contriever``) or local folder; ``HF_HUB_OFFLINE=1`` is
            honoured by transformers itself, so an offline run only needs the files locally.
        max_length: truncation length (None: the model's declared max_seq_length, else 512),
            further capped by what the model and tokenizer support.
        normalize: L2-normalise the pooled vectors (None: as the model declares; no otherwise).
        pooling: mean | cls | last_token | max (None: as the model declares; mean otherwise).
        query_prefix: text put before each query (None: the model's ``query`` prompt).
        item_prefix: text put before each profile item (None: the model's document prompt).
        batch_size: texts per forward pass.
        precision: ``auto`` (fp16 on CUDA, else fp32), ``fp32``, ``fp16`` or ``bf16``.
        device: ``auto``, ``cpu``, ``cuda``, ``cuda:1``...
        trust_remote_code: passed to transformers; off unless you trust the checkpoint's code.
        revision: hub revision (branch, tag or commit) of the checkpoint.
        progress: show a tqdm bar (items/s) while encoding.
        window_tokens: token budget of the sort window: consecutive texts are tokenized (into a
            numpy int32 array) until the next batch would pass it, then length-sorted and encoded.
            Memory is bounded by tokens, whatever the text lengths; at least one batch of
            `max_length` texts always fits. `peak_window_tokens` records the most ever held.
    """

    total_forward_calls: ClassVar[int] = 0

    def __init__(
        self,
        name_or_path: str | Path = "facebook/contriever",
        *,
        max_length: int | None = None,
        normalize: bool | None = None,
        pooling: str | None = None,
        query_prefix: str | None = None,
        item_prefix: str | None = None,
        batch_size: int = 64,
        precision: str = "auto",
        device: str = "auto",
        trust_remote_code: bool = False,
        revision: str | None = None,
        progress: bool = True,
        window_tokens: int = 1 << 21,
    ) -> None:
        from transformers import AutoModel, AutoTokenizer

        self.name = str(name_or_path)
        recipe = read_recipe(self.name, revision, pooling is not None)
        self.recipe = recipe.with_overrides(pooling, normalize, query_prefix, item_prefix)
        max_length = max_length or self.recipe.max_length or 512
        if batch_size < 1 or max_length < 1:
            raise ConfigError(f"batch_size and max_length must be positive (got {batch_size}, {max_length})")
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.normalize, self.batch_size, self.progress = self.recipe.normalize, batch_size, progress
        self.forward_calls, self.peak_window_tokens, self.forward_seconds = 0, 0, 0.0
        self.tokenizer = AutoTokenizer.from_pretrained(
            self.name, revision=revision, trust_remote_code=trust_remote_code
        )
        self.model = (
            load_pretrained(
                AutoModel, self.name, revision=revision, trust_remote_code=trust_remote_code, dtype=self.dtype
            )
            .to(self.device)
            .eval()
        )
        self.max_length = min(max_length, *self._model_limits())
        self.window_tokens = max(window_tokens, batch_size * self.max_length)
        self.pad_id = self.tokenizer.pad_token_id if self.tokenizer.pad_token_id is not None else 0
        logger.info(
            "encoder %s on %s (%s), max_length %d, %s", self.name, self.device, self.dtype, self.max_length, self.recipe
        )

    def _model_limits(self) -> list[int]:
        """Lengths past which the model has no position embeddings or the tokenizer no meaning."""
        limits = [getattr(self.model.config, "max_position_embeddings", None), self.tokenizer.model_max_length]
        # Tokenizers without a limit report a huge sentinel (int(1e30)); ignore it.
        return [int(x) for x in limits if isinstance(x, int) and 0 < x < 1_000_000] or [1 << 30]

    @property
    def dim(self) -> int:
        """Width of an embedding."""
        size = getattr(self.model.config, "hidden_size", None)
        if size:
            return int(size)
        import torch

        with torch.inference_mode():  # configs without hidden_size: ask the model
            return int(self._forward(*self._pad(self.tokenize(["dimension probe"]))).shape[1])

    def tokenize(self, texts: Sequence[str], role: str | None = None) -> list[list[int]]:
        """Token ids of each text (after the `role`'s prefix: ``query``, ``item`` or None),
        truncated to `max_length`, without padding."""
        prefix = self.recipe.prefix(role)
        texts = [prefix + text for text in texts] if prefix else list(texts)
        return self.tokenizer(
            [text.lower() for text in texts] if self.recipe.lower_case else texts,
            truncation=True,
            max_length=self.max_length,
            padding=False,
            return_attention_mask=False,
            return_token_type_ids=False,
        )["input_ids"]

    def _forward(self, ids: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """One forward pass: pooled float32 vectors of a padded batch."""
        import torch

        self.forward_calls += 1
        Encoder.total_forward_calls += 1
        start = time.perf_counter()  # the benchmark tells the model's time from the pipeline's
        output = self.model(input_ids=ids.to(self.device), attention_mask=mask.to(self.device))
        hidden = output.last_hidden_state if hasattr(output, "last_hidden_state") else output[0]
        # Pool in float32: fp16 sums over 512 tokens lose precision.
        pooled = pool(hidden.float(), mask.to(self.device), self.recipe.pooling)
        pooled = torch.nn.functional.normalize(pooled, dim=-1) if self.normalize else pooled
        if pooled.device.type == "cuda":
            torch.cuda.synchronize(pooled.device)
        self.forward_seconds += time.perf_counter() - start
        return pooled

    def _pad(self, batch: Sequence[Sequence[int] | np.ndarray]) -> tuple[torch.Tensor, torch.Tensor]:
        import torch

        width = max(1, *(len(ids) for ids in batch))
        ids = np.full((len(batch), width), self.pad_id, dtype=np.int64)
        mask = np.zeros((len(batch), width), dtype=np.int64)
        for row, tokens in enumerate(batch):
            ids[row, : len(tokens)] = tokens
            mask[row, : len(tokens)] = 1
        return torch.from_numpy(ids), torch.from_numpy(mask)

    def encode(
        self,
        texts: Sequence[str],
        out: np.ndarray | None = None,
        *,
        desc: str = "encoding",
        role: str | None = None,
    ) -> np.ndarray:
        """Encode `texts` into rows of `out` (allocated when None), in the order given.

        Args:
            texts: the texts; row i of the result belongs to texts[i].
            out: a preallocated float32 array or memmap of shape (len(texts), dim).
            desc: label of the progress bar.
            role: ``query`` or ``item`` puts that role's prefix first; None encodes texts as given.

        Returns:
            `out`, filled.
        """
        import torch

        if out is None:
            out = np.empty((len(texts), self.dim if texts else 0), dtype=np.float32)
        if out.shape[0] != len(texts):
            raise ValueError(f"output has {out.shape[0]} rows for {len(texts)} texts")
        bar = tqdm(total=len(texts), desc=desc, unit="item", disable=not self.progress, dynamic_ncols=True)
        with torch.inference_mode(), bar:
            for first, tokens, lengths in self.windows(texts, role):
                starts = np.cumsum(lengths) - lengths
                # Longest first: an out-of-memory batch shows at once, not at the very end.
                order = np.argsort(-lengths, kind="stable")
                for b in range(0, len(order), self.batch_size):
                    rows = order[b : b + self.batch_size]
                    pooled = self._forward(*self._pad([tokens[starts[r] : starts[r] + lengths[r]] for r in rows]))
                    out[first + rows] = pooled.cpu().numpy()
                    bar.update(len(rows))
        return out

    def windows(self, texts: Sequence[str], role: str | None = None) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
        """Consecutive runs of `texts`, tokenized, each within `window_tokens` tokens.

        Yields:
            (row of the run's first text, its token ids concatenated (int32), each text's length).
        """
        held: list[tuple[np.ndarray, np.ndarray]] = []
        first, count, size = 0, 0, 0
        # Texts per tokenizer call: many (fewer calls), but never more tokens than the budget.
        step = max(self.batch_size, min(4096, self.window_tokens // self.max_length))
        for lo in range(0, len(texts), step):
            ids = self.tokenize(texts[lo : lo + step], role)
            lengths = np.fromiter(map(len, ids), dtype=np.int64, count=len(ids))
            flat = np.fromiter(itertools.chain.from_iterable(ids), dtype=np.int32, count=int(lengths.sum()))
            del ids
            if held and size + len(flat) > self.window_tokens:
                yield first, np.concatenate([f for f, _ in held]), np.concatenate([n for _, n in held])
                first, held, count, size = first + count, [], 0, 0
            held.append((flat, lengths))
            count, size = count + len(lengths), size + len(flat)
            self.peak_window_tokens = max(self.peak_window_tokens, size)
        if held:
            yield first, np.concatenate([f for f, _ in held]), np.concatenate([n for _, n in held])


def encoder_slug(name: str) -> str:
    """Cache folder name of an encoder: ``facebook--contriever``; a local folder adds a digest of
    its absolute path, so two folders called ``model`` do not share a cache."""
    path = Path(name)
    clean = re.sub(r"[^A-Za-z0-9._-]+", "-", path.name if path.exists() else name.replace("/", "--"))
    return f"{clean}-{stable_hash(str(path.resolve()))[:8]}" if path.exists() else clean


def folder_fingerprint(name: str) -> str | None:
    """A local model folder's digest (small files by content, weights by size and mtime), so a
    checkpoint replaced in place is noticed; None for hub names, whose `revision` says it."""
    path = Path(name)
    if not path.is_dir():
        return None
    parts = []
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        stat = file.stat()
        small = stat.st_size < (1 << 20)
        parts.append(
            (
                str(file.relative_to(path)),
                hashlib.sha256(file.read_bytes()).hexdigest() if small else f"{stat.st_size}:{stat.st_mtime_ns}",
            )
        )
    return stable_hash(parts)


@dataclass(frozen=True)
class EncoderSettings:
    """How to build an `Encoder`; `key()` is the part a cached store depends on. None: as the
    model declares (`lamp_pl.retrieval.recipe`)."""

    name: str = "facebook/contriever"
    revision: str | None = None
    max_length: int | None = None
    normalize: bool | None = None
    precision: str = "auto"
    trust_remote_code: bool = False
    batch_size: int = 64
    device: str = "auto"
    pooling: str | None = None
    query_prefix: str | None = None
    item_prefix: str | None = None

    def recipe(self) -> EncodingRecipe:
        """The encoding recipe: the model's declared one with these settings on top."""
        declared = read_recipe(self.name, self.revision, self.pooling is not None)
        return declared.with_overrides(self.pooling, self.normalize, self.query_prefix, self.item_prefix)

    def key(self) -> dict:
        """Manifest fields: batch size and device change nothing but float noise, so they are left
        out; `precision` is recorded as configured (``auto`` means fp16 on GPU, fp32 on CPU); the
        recipe as resolved (the model's choices with the settings on top)."""
        recipe = self.recipe()
        return {
            "name": self.name,
            "revision": self.revision,
            "fingerprint": folder_fingerprint(self.name),
            "max_length": self.max_length or recipe.max_length or 512,
            "pooling": recipe.pooling,
            "normalize": recipe.normalize,
            "query_prefix": recipe.query_prefix,
            "item_prefix": recipe.item_prefix,
            "lower_case": recipe.lower_case,
            "precision": self.precision,
            "dtype": "float32",
        }

    def build(self, progress: bool = True) -> Encoder:
        return Encoder(
            self.name,
            max_length=self.max_length,
            normalize=self.normalize,
            pooling=self.pooling,
            query_prefix=self.query_prefix,
            item_prefix=self.item_prefix,
            batch_size=self.batch_size,
            precision=self.precision,
            device=self.device,
            trust_remote_code=self.trust_remote_code,
            revision=self.revision,
            progress=progress,
        )


__all__ = [
    "Encoder",
    "EncoderSettings",
    "encoder_slug",
    "folder_fingerprint",
    "mean_pooling",
    "resolve_device",
    "resolve_precision",
]
