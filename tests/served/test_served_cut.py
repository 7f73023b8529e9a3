"""The text a served run sends for a cut prompt re-tokenizes to the ids a local model reads, whatever
the vocabulary: `<unk>` (a T5-style SentencePiece tokenizer), byte fallback, tiktoken's bytes.

Every cut length of each prompt is tried (no server: `tests/test_served.py` sends such prompts to a
real `transformers serve` and compares the answers with a local model's).
"""

from __future__ import annotations

import logging

from lamp_pl.demo.tokenizers import train_t5_tokenizer
from lamp_pl.models.served import warn_about_cuts
from lamp_pl.served.cut import Cut, cut_text

CORPUS = ["the tag for the movie is comedy", "gori kedozo gosiba kivo zaro", "a dark comedy about a book"] * 20
PROMPTS = [
    'the tag for the movie: "gōri kėdožo" is €€ comedy ☃ about a bōōk',
    "žž gori kedozo ž gosiba kivo zaro €",
]


def every_cut(tok, prompt: str):
    """(kept ids, cut) for every truncation length of `prompt`, as the data module truncates."""
    whole = len(tok(prompt)["input_ids"])
    for length in range(1, whole + 2):
        kept = list(tok(prompt, truncation=True, max_length=length)["input_ids"])
        yield kept, cut_text(tok, prompt, kept)


def test_unk_characters_keep_the_cut_where_a_local_model_cut():
    tok = train_t5_tokenizer(CORPUS, vocab_size=60)  # `</s>` appended, as T5's
    for prompt in PROMPTS:
        ids = tok(prompt)["input_ids"]
        assert ids.count(tok.unk_token_id) >= 3 and ids[-1] == tok.eos_token_id
        for kept, cut in every_cut(tok, prompt):
            if len(kept) == 2 and cut.dropped == 1:  # ["▁", "</s>"]: no text is a lone word start
                continue
            assert cut == Cut(cut.text) and tok(cut.text)["input_ids"] == kept, (prompt, kept)


def byte_fallback_tokenizer():
    """A Llama-style BPE with byte fallback: characters outside its vocabulary become their UTF-8 bytes."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = {"<unk>": 0, "<s>": 1, "</s>": 2, **{f"<0x{b:02X}>": 3 + b for b in range(256)}}
    for piece in ["▁", *"abcdefghijklmnopqrstuvwxyz", "▁t", "he", "▁the"]:
        vocab[piece] = len(vocab)
    merges = [("▁", "t"), ("h", "e"), ("▁t", "he")]
    tokenizer = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", byte_fallback=True))
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace()
    tokenizer.decoder = decoders.Sequence([decoders.Metaspace(), decoders.ByteFallback(), decoders.Fuse()])
    tokenizer.post_processor = processors.TemplateProcessing(single="<s> $A", special_tokens=[("<s>", 1)])
    return PreTrainedTokenizerFast(tokenizer_object=tokenizer, bos_token="<s>", eos_token="</s>", unk_token="<unk>")


def test_byte_fallback_cut_inside_a_character_ends_before_it_and_says_so(caplog):
    tok = byte_fallback_tokenizer()
    prompt = "the €uro and ☃ the"
    assert len(tok("€")["input_ids"]) == 1 + 1 + 3  # <s>, "▁", the three bytes of "€"
    dropped = []
    for kept, cut in every_cut(tok, prompt):
        assert cut.exact and tok(cut.text)["input_ids"] == kept[: len(kept) - cut.dropped]
        dropped.append(cut.dropped)
    assert sorted(set(dropped)) == [0, 1, 2]  # one or two bytes of "€" or "☃" could not be sent
    with caplog.at_level(logging.WARNING):
        warn_about_cuts({"q1": Cut("a", dropped=2), "q2": Cut("b"), "q3": Cut("c", dropped=1)})
    assert "2 of 3 prompts end 3 tokens earlier" in caplog.text and "question q1: 2 tokens" in caplog.text


def test_tiktoken_cut_inside_a_character_ends_before_it():
    import tiktoken

    from lamp_pl.served.tiktoken_tokenizer import TiktokenTokenizer

    ranks = {bytes([i]): i for i in range(256)}
    ranks[b"th"] = 256
    encoding = tiktoken.Encoding(
        "bytes", pat_str=r"\S+|\s+", mergeable_ranks=ranks, special_tokens={"<|endoftext|>": 257}
    )
    tok = TiktokenTokenizer(encoding)
    dropped = set()
    for kept, cut in every_cut(tok, "the é and ☃ th"):
        assert cut.exact and tok(cut.text)["input_ids"] == kept[: len(kept) - cut.dropped]
        dropped.add(cut.dropped)
    assert dropped == {0, 1, 2}  # inside "é" (2 bytes) or "☃" (3 bytes): cut before the character
