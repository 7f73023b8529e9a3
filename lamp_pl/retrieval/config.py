"""`RetrievalConfig`: how profile items are retrieved, and the names of the retrievers.

The bottom of the retrieval package's imports: config -> registry -> retrievers -> controls, and
results (the cache) -> config and registry. Retriever names are a `Literal`, so `--help` and config
errors list them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Literal, get_args

from lamp_pl.errors import ConfigError

if TYPE_CHECKING:
    from lamp_pl.retrieval.encoder import EncoderSettings

RetrieverName = Literal[
    "none",
    "contriever",
    "bm25",
    "recency",
    "random",
    "recency_contriever",
    "other_users_random",
    "other_users_bm25",
    "mixed",
    "selected",
    "hybrid",
]
RETRIEVERS: tuple[str, ...] = get_args(RetrieverName)


@dataclass
class RetrievalConfig:
    """How profile items are retrieved for each question."""

    retriever: RetrieverName = "contriever"
    """Which retriever ranks the profile (`none` = no profile items)."""
    k_max: int = 16
    """Ranked items cached per question; any k <= k_max (plus offset) is then free. -1 = all."""
    encoder: str = "facebook/contriever"
    """Dense encoder: hub name or local folder, encoded as its sentence-transformers files say
    (pooling, Normalize, max_seq_length, prompts); without them as Contriever (mean, inner product)."""
    encoder_max_length: int | None = None
    """Truncation length of the encoder (None: the model's declared max_seq_length, else 512;
    further capped by the model's own limit)."""
    normalize: bool | None = None
    """L2-normalise embeddings (cosine); None: as the model declares (a Normalize module), else no."""
    pooling: str | None = None
    """mean | cls | last_token | max; None: as the model declares, else mean (Contriever)."""
    query_prefix: str | None = None
    """Text put before each query (e5: ``"query: "``); None: the model's declared query prompt."""
    item_prefix: str | None = None
    """Text put before each profile item (e5: ``"passage: "``); None: the model's document prompt."""
    encode_batch_size: int = 64
    """Texts per encoder forward pass (length-sorted batches)."""
    precision: str = "auto"
    """auto (fp16 on GPU, fp32 on CPU) | fp32 | fp16 | bf16."""
    device: str = "auto"
    """Device of the encoder: auto | cpu | cuda | cuda:N."""
    trust_remote_code: bool = False
    """Let transformers run the checkpoint's own code."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) of the encoder."""
    seed: int = 0
    """Seed of the random and other-users retrievers (combined with each question id)."""
    with_replacement: bool = False
    """random: draw with replacement, as the official code (random.choices)."""
    drop_identical: bool = False
    """Never retrieve a profile item whose retrieval text equals the question's query or input."""
    bm25_impl: Literal["official", "bm25s"] = "official"
    """official: rank_bm25 BM25Okapi's scores and tie order, as the official code | bm25s: the
    faster bm25s library (`bm25_method` variant; stop words score differently)."""
    bm25_tokenizer: str = "whitespace"
    """whitespace (official: text.split()) | bm25s (lower case, stop words removed)."""
    bm25_method: str = "robertson"
    """bm25s scoring variant (used with bm25_impl=bm25s only)."""
    mixed_inputs: RetrieverName = "contriever"
    """mixed: the retriever whose items give the input part."""
    mixed_outputs: RetrieverName = "bm25"
    """mixed: the retriever whose items give the output part."""
    other_users_pool: int = 0
    """other_users_bm25: pool size; 0 = the split's mean profile size."""
    use_date: bool = False
    """Append each profile item's date to its retrieval text (``"<text> date: <date>"``), as the
    official ranker's --use_date does for dense and BM25 (`lamp_pl.retrieval.dated`)."""
    selector: str | None = None
    """selected: the selector's choices file (`lamp_pl.retrieval.selected`)."""
    hybrid_members: list[str] = field(default_factory=lambda: ["bm25", "contriever"])
    """hybrid: the retrievers whose rankings are fused (`lamp_pl.retrieval.hybrid`)."""
    hybrid_fusion: Literal["rrf", "weighted"] = "rrf"
    """hybrid: rrf (reciprocal-rank fusion) | weighted (sum of min-max normalised scores)."""
    hybrid_rrf_k: float = 60.0
    """hybrid: the constant of reciprocal-rank fusion, 1 / (rrf_k + rank)."""
    hybrid_weights: list[float] | None = None
    """hybrid: one weight per member (None: all 1)."""
    hybrid_depth: int = 100
    """hybrid: items each member ranks before fusion (-1: whole profiles)."""
    rerank: str | None = None
    """Cross-encoder (hub name or folder) rescoring the first stage's top `rerank_depth` items of
    each question; k_max of them are kept (`lamp_pl.retrieval.rerank`). None: no reranking."""
    rerank_depth: int = 50
    """Rerank: first-stage candidates rescored per question (N)."""
    rerank_batch_size: int = 32
    """Rerank: (query, item) pairs per cross-encoder forward pass (length-sorted batches)."""
    rerank_max_length: int = 512
    """Rerank: truncation length of a (query, item) pair."""

    def __post_init__(self) -> None:
        for field_name in ("retriever", "mixed_inputs", "mixed_outputs"):
            if getattr(self, field_name) not in RETRIEVERS:
                raise ConfigError(f"{field_name}={getattr(self, field_name)!r}; choose one of {', '.join(RETRIEVERS)}")
        if self.k_max < 1 and self.k_max != -1:
            raise ConfigError(f"k_max must be >= 1, or -1 for whole profiles (got {self.k_max})")
        for member in self.hybrid_members:
            if member not in RETRIEVERS:
                raise ConfigError(f"hybrid_members: {member!r}; choose from {', '.join(RETRIEVERS)}")
        if self.rerank_depth < 1:
            raise ConfigError(f"rerank_depth must be >= 1 (got {self.rerank_depth})")

    def encoder_settings(self) -> EncoderSettings:
        from lamp_pl.retrieval.encoder import EncoderSettings  # torch: only when encoding

        return EncoderSettings(
            self.encoder,
            self.revision,
            self.encoder_max_length,
            self.normalize,
            self.precision,
            self.trust_remote_code,
            self.encode_batch_size,
            self.device,
            self.pooling,
            self.query_prefix,
            self.item_prefix,
        )
