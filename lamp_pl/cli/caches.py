"""`lamp-pl index` and `lamp-pl inspect`: build the data caches of a config, and show one prompt.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`, which registers and parses
them). They receive the `LaMPData` of the config's data section; no model weights are loaded.
"""

from __future__ import annotations

import contextlib
import sys
import time
from typing import TYPE_CHECKING

from lamp_pl.cache import full_checks
from lamp_pl.data.stages import check_splits_present, stage_splits

if TYPE_CHECKING:
    from lamp_pl.data.pipeline import LaMPData


def index(data: LaMPData, verify: bool = False) -> dict:
    """Build (or verify) every data cache of a config; print a JSON summary.

    Encodes profiles, builds the per-user indexes, ranks every split's items and tokenizes the
    prompts, once; a second run only verifies the caches.

    Args:
        data: The config's data section.
        verify: Checksum every cache file in full (a damaged one is rebuilt); a plain open checks
            sizes and the checksums of small files only.
    """
    start = time.perf_counter()
    data.write_synthetic_data()
    check_splits_present(data.data_dir, data.task, stage_splits(data))  # before anything is cached
    with full_checks() if verify else contextlib.nullcontext():
        summary = data.build(data.splits_for(None)) or {}
    summary["verified"] = verify
    summary.setdefault("seconds", round(time.perf_counter() - start, 3))
    summary.update(task=data.task.name, retriever=data.retrieval.retriever, cache_dir=str(data.cache_dir))
    return summary


def inspect(data: LaMPData, id: str, split: str = "dev") -> dict | int:
    """Print what the model reads for one question: query, items, prompt.

    Args:
        data: The config's data section.
        id: Question id.
        split: Split holding the question.
    """
    from lamp_pl.data.lamp import load_split

    data.write_synthetic_data()
    data.build([split])
    questions = load_split(data.data_dir, data.task, split)
    index = next((i for i, q in enumerate(questions) if q.id == id), None)
    if index is None:
        print(f"lamp-pl inspect: error: no question {id!r} in split {split!r}", file=sys.stderr)
        return 1
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
            for item, score in zip(retrieved.items, retrieved.scores)
        ]
        if retrieved
        else [],
        "prompt": prompt,
        "prompt_tokens": len(data.tokenizer(prompt, truncation=True, max_length=data.max_input_length)["input_ids"]),
        "gold": question.output,
    }
