"""Tokenizers trained offline on a synthetic LaMP task's texts, for tests and the demo.

The result is an ordinary Hugging Face tokenizer folder: the core loads it with
`AutoTokenizer.from_pretrained(folder)` like any other.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from lamp_pl.cache import atomic_folder

SPECIAL_T5 = ["<pad>", "</s>", "<unk>"]
SPECIAL_CAUSAL = ["<pad>", "<s>", "</s>", "<unk>"]
# A minimal chat template (Llama-2 style), so `model.chat_template: true` is testable offline.
TINY_CHAT_TEMPLATE = (
    "{{ bos_token }}{% for m in messages %}[{{ m['role'] }}] {{ m['content'] }} {% endfor %}"
    "{% if add_generation_prompt %}[assistant] {% endif %}"
)


def train_t5_tokenizer(corpus: Iterable[str], vocab_size: int = 2000, bpe: bool = False):
    """A SentencePiece-style Unigram tokenizer with T5's special tokens, trained on `corpus`.

    With `bpe`, the pieces are learned by byte-pair merges instead (same special tokens, spaces
    and decoding): on a small corpus of made-up words BPE keeps each frequent word whole, where
    Unigram's pruning splits them into letters."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors, trainers
    from transformers import PreTrainedTokenizerFast

    tokenizer = Tokenizer(models.BPE(unk_token="<unk>") if bpe else models.Unigram())
    tokenizer.normalizer = normalizers.NFKC()
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Metaspace()
    trainer = (
        trainers.BpeTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_T5)
        if bpe
        else trainers.UnigramTrainer(vocab_size=vocab_size, special_tokens=SPECIAL_T5, unk_token="<unk>")
    )
    tokenizer.train_from_iterator(corpus, trainer=trainer)
    eos = tokenizer.token_to_id("</s>")
    # T5 appends </s> to every sequence; the official LaMP token budget counts it.
    tokenizer.post_processor = processors.TemplateProcessing(
        single="$A </s>", pair="$A </s> $B </s>", special_tokens=[("</s>", eos)]
    )
    return PreTrainedTokenizerFast(
        tokenizer_object=tokenizer, pad_token="<pad>", eos_token="</s>", unk_token="<unk>", model_max_length=512
    )


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
    tokenizer.post_processor = processors.TemplateProcessing(
        single="<s> $A", pair="<s> $A $B", special_tokens=[("<s>", tokenizer.token_to_id("<s>"))]
    )
    fast = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        pad_token="<pad>",
        bos_token="<s>",
        eos_token="</s>",
        unk_token="<unk>",
        model_max_length=512,
    )
    fast.chat_template = TINY_CHAT_TEMPLATE
    return fast


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


def build_synthetic_tokenizer(dest: str | Path, task: str = "LaMP_2", seed: int = 0, vocab_size: int = 2000) -> Path:
    """A T5-style tokenizer trained on the synthetic task's corpus, saved as a folder (deterministic;
    an existing complete folder is reused)."""

    def build(folder: Path) -> None:
        train_t5_tokenizer(synthetic_corpus(task, seed), vocab_size=vocab_size).save_pretrained(folder)

    return atomic_folder(dest, build)
