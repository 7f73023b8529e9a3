"""`lamp-pl index` and `lamp-pl inspect`: build the data caches of a config, and show one prompt.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`, which registers and parses
them). They receive the `LaMPData` of the config's data section; no model weights are loaded.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING

from lamp_pl.cache import full_checks
from lamp_pl.data.lamp import split_files
from lamp_pl.data.stages import check_splits_present, stage_splits
from lamp_pl.errors import ConfigError
from lamp_pl.resolve import resolve_data_section

if TYPE_CHECKING:
    from lamp_pl.pipeline.data import LaMPData


def index(data: LaMPData, verify: bool = False, prompts: bool = True) -> dict:
    """Build (or verify) every data cache of a config; print a JSON summary.

    Encodes profiles, builds the per-user indexes, ranks every split's items and tokenizes the
    prompts, once; a second run only verifies the caches.

    Args:
        data: The config's data section.
        verify: Checksum every cache file in full (a damaged one is rebuilt); a plain open checks
            sizes and the checksums of small files only.
        prompts: Also build and tokenize every prompt. False ranks only (what the official
            `rank_profiles.py` does), never loading the tokenizer; `fit`, `test` and `inspect`
            tokenize the prompts they need on first use.
    """
    start = time.perf_counter()
    resolve_data_section(data)  # tokenizer and encoder exist, before any data is prepared
    data.write_synthetic_data()
    check_splits_present(data.data_dir, data.task, stage_splits(data))  # before anything is cached
    with full_checks() if verify else contextlib.nullcontext():
        summary = data.build(data.splits_for(None), prompts=prompts) or {}
    summary.update(verified=verify, prompts=prompts)
    summary.setdefault("seconds", round(time.perf_counter() - start, 3))
    summary.update(task=data.task.name, retriever=data.retrieval.retriever, cache_dir=str(data.cache_dir))
    return summary


def inspect(data: LaMPData, id: str, split: str = "dev") -> dict:
    """Print what the model reads for one question: query, items, prompt.

    Args:
        data: The config's data section.
        id: Question id.
        split: Split holding the question.
    """
    from lamp_pl.data.lamp import load_split

    resolve_data_section(data)
    data.write_synthetic_data()
    questions = load_split(data.data_dir, data.task, split)  # validated before anything is built
    index = next((i for i, q in enumerate(questions) if q.id == id), None)
    if index is None:
        raise ConfigError(f"{split_files(data.data_dir, data.task, split)[0]}: no question {id!r} in split {split!r}")
    data.build([split])
    question = questions[index]
    retrieved = data.view(split).retrieved()[index] if data.uses_retrieval else None
    prompt = data.prompts(split)[index]
    return {
        "id": question.id,
        "user": question.user,
        "retriever": data.retrieval.retriever,
        "k": data.k,
        "query": data.task.query(question.input),
        "retrieved": [
            {"id": item["id"], "score": score, "text": data.task.item_text(item)}
            # A reranked list shows both stages: the cross-encoder's score and the first stage's.
            | ({"first_stage_score": retrieved.first_scores[i]} if retrieved.first_scores else {})
            for i, (item, score) in enumerate(zip(retrieved.items, retrieved.scores))
        ]
        if retrieved
        else [],
        "prompt": prompt,
        "prompt_tokens": len(data.tokenizer(prompt, truncation=True, max_length=data.max_input_length)["input_ids"]),
        "gold": question.output,
    }
