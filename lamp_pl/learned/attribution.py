"""`attribute`: how much each retrieved item in a prompt contributes to the gold output.

Per question and per item of its prompt: the item's position in the prompt (1 = first), its
retrieval rank, the leave-one-out change of the gold output's log-likelihood (full prompt minus
the prompt rebuilt without the item, by the same prompt builder, so the freed budget goes to the
other items as it would in a real k - 1 prompt), and the share of the generator's attention mass
on the item's tokens: cross-attention (seq2seq) or attention from the target positions (causal),
averaged over layers, heads and target tokens. The shares of a question's items sum to at most 1
(the input's own tokens take the rest). A summary gives the mean of both per position.

Item spans are located in the prompt text by their rendered template pieces, in prompt order, and
mapped to tokens through the fast tokenizer's offsets mapping.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
from pathlib import Path

import torch

from lamp_pl.cache import write_text_atomic
from lamp_pl.data.lamp import load_split
from lamp_pl.errors import ConfigError
from lamp_pl.learned.likelihood import (
    encode_pairs,
    forward_pairs,
    is_seq2seq,
    log_likelihoods,
)
from lamp_pl.learned.scoring import learned_folder, load_generator, run_sharded, world
from lamp_pl.lightning.checkpoints import check_checkpoint
from lamp_pl.prompts import arrange
from lamp_pl.resolve import resolve_data_section

ATTRIBUTION_FORMAT = 1


def _template(task, ablation: str) -> str:
    if ablation == "only_input":
        return task.input_only_template
    if ablation == "only_output":
        return task.output_only_template
    return task.item_template


def item_spans(prompt: str, items: list[dict], task, ablation: str = "both") -> list[tuple[int, int] | None]:
    """Character span of each (arranged) item in `prompt`, in order; None where it is absent
    (the prompt fell back to the bare input)."""
    template = _template(task, ablation)
    spans: list[tuple[int, int] | None] = []
    cursor = 0
    for item in items:
        head, _, tail = template.partition("{free}")
        values = {k: v for k, v in item.items()}
        head_text = head.format_map(values)
        tail_text = tail.format_map(values) if "{free}" in template else ""
        start = prompt.find(head_text, cursor)
        end = prompt.find(tail_text, start + len(head_text)) if start >= 0 and tail_text else start + len(head_text)
        if start < 0 or end < 0:
            spans.append(None)
            continue
        end += len(tail_text)
        spans.append((start, end))
        cursor = end
    return spans


def token_spans(tokenizer, prompt: str, spans: list[tuple[int, int] | None], max_length: int) -> list[list[int]]:
    """Token indices (of the truncated prompt) overlapping each character span."""
    offsets = tokenizer(prompt, truncation=True, max_length=max_length, return_offsets_mapping=True)["offset_mapping"]
    out: list[list[int]] = []
    for span in spans:
        if span is None:
            out.append([])
            continue
        out.append([t for t, (a, b) in enumerate(offsets) if b > a and a < span[1] and b > span[0]])
    return out


@contextlib.contextmanager
def eager_attention(model):
    """Fused attention kernels (sdpa, flash) return no weights: switch to eager for the block."""
    before = getattr(model.config, "_attn_implementation", None)
    if before not in (None, "eager") and hasattr(model, "set_attn_implementation"):
        model.set_attn_implementation("eager")
    try:
        yield model
    finally:
        if before not in (None, "eager") and hasattr(model, "set_attn_implementation"):
            model.set_attn_implementation(before)


def attention_over_prompt(
    model, tokenizer, prompts: list[str], targets: list[str], max_input_length: int, max_target_length: int
) -> list[torch.Tensor]:
    """Per prompt: attention mass per prompt token, averaged over layers, heads and target tokens."""
    batch = encode_pairs(model, tokenizer, prompts, targets, max_input_length, max_target_length)
    with eager_attention(model):
        out = forward_pairs(model, batch, output_attentions=True)
    layers = out.cross_attentions if is_seq2seq(model) else out.attentions
    if not layers or layers[0] is None:
        raise RuntimeError("the generator returned no attentions; load it with attn_implementation='eager'")
    mean = torch.stack([layer.float() for layer in layers]).mean(dim=(0, 2))  # (batch, query, key)
    shares = []
    for row, length in enumerate(batch.prompt_lengths):
        # seq2seq: the decoder positions of the target; causal: the positions predicting it.
        queries = batch.target_mask[row]
        shares.append(mean[row, queries.to(mean.device)][:, :length].mean(dim=0).cpu())
    return shares


def _attribute_chunk(datamodule, generator, questions, retrieved, batch_size: int) -> list[dict]:
    task, dm = datamodule.task, datamodule
    model, tokenizer = generator.model, generator.tokenizer
    records = []
    for question, ranked in zip(questions, retrieved):

        def prompt_of(items: list[dict], question=question) -> str:
            return dm.prompt_for(question, items)

        full = prompt_of(ranked.items)
        arranged = arrange(ranked.items, task, dm.prompt, question.id)
        spans = item_spans(full, arranged, task, dm.prompt.ablation)
        tokens = token_spans(tokenizer, full, spans, dm.max_input_length)
        shares = attention_over_prompt(
            model, tokenizer, [full], [question.output], dm.max_input_length, dm.max_target_length
        )
        left_out = [prompt_of([x for j, x in enumerate(ranked.items) if j != i]) for i in range(len(ranked.items))]
        full_ll, *loo = log_likelihoods(
            model,
            tokenizer,
            [full, *left_out],
            [question.output] * (1 + len(left_out)),
            batch_size,
            dm.max_input_length,
            dm.max_target_length,
        )
        # The same order without the decoupling, whose re-paired copies would hide which item is which.
        plain = dataclasses.replace(dm.prompt, ablation="both")
        position = {id(item): p for p, item in enumerate(arrange(list(ranked.items), task, plain, question.id))}
        items = []
        for rank, (item, item_id) in enumerate(zip(ranked.items, ranked.item_ids)):
            p = position[id(item)]
            span = spans[p]
            items.append(
                {
                    "id": item_id,
                    "rank": rank + 1,
                    "position": p + 1,
                    "loo_delta": full_ll - loo[rank],
                    "attention_share": float(shares[0][tokens[p]].sum()) if tokens[p] else 0.0,
                    "span": list(span) if span is not None else None,
                }
            )
        records.append(
            {"id": question.id, "gold": question.output, "prompt": full, "log_likelihood": full_ll, "items": items}
        )
    return records


def summarize(records: list[dict]) -> list[dict]:
    """Mean leave-one-out delta and attention share of the 1st, 2nd, ... item in the prompt."""
    by_position: dict[int, list[dict]] = {}
    for record in records:
        for item in record["items"]:
            by_position.setdefault(item["position"], []).append(item)
    return [
        {
            "position": p,
            "count": len(rows),
            "mean_loo_delta": sum(r["loo_delta"] for r in rows) / len(rows),
            "mean_attention_share": sum(r["attention_share"] for r in rows) / len(rows),
        }
        for p, rows in sorted(by_position.items())
    ]


def attribute(
    datamodule,
    ckpt_path: str | Path,
    split: str = "dev",
    out: str | Path | None = None,
    *,
    generator=None,
    batch_size: int = 32,
    chunk_size: int = 64,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
) -> Path:
    """Attribute the gold output's likelihood to each item of each prompt of `split`.

    Args:
        datamodule: The data pipeline (`LaMPData`) whose k, offset, retrieval cache and prompt settings make
            the prompts (as the generator reads them).
        ckpt_path: The generator's Lightning checkpoint.
        split: The split to attribute (it needs gold outputs).
        out: The JSON file to write (default: ``attribution/<split>-<hash>/attribution.json``
            beside the retrieval results).
        generator: The already loaded LightningModule of `ckpt_path` (default: load it).
        batch_size: Leave-one-out prompts per forward pass.
        chunk_size: Questions per resumable chunk.
        rank: This process's rank (default: the process group's, else 0).
        world_size: Number of processes (default: the process group's, else 1).
        progress: Show a progress bar.

    Returns:
        The JSON file: ``{"task", "split", "questions": [...], "summary": [...]}``.
    """
    rank, world_size, barrier = world(rank, world_size)
    dm = datamodule
    if generator is None:
        check_checkpoint(ckpt_path)
    resolve_data_section(dm)  # tokenizer and encoder, before any encoding
    view = dm.prepare_view(split, rank=rank, world_size=world_size, barrier=barrier, progress=progress)
    folder = learned_folder(
        dm, "attribution", ckpt_path, split, {"format_attribution": ATTRIBUTION_FORMAT, "k": dm.k, "offset": dm.offset}
    )
    records_path = folder / "records.jsonl"
    if not records_path.is_file():
        questions = load_split(dm.data_dir, dm.task, split)
        if any(q.output is None for q in questions):
            raise ConfigError(f"split {split!r} of {dm.task.name} has no gold outputs to attribute")
        retrieved = view.retrieved()
        generator = generator if generator is not None else load_generator(ckpt_path)
        generator.eval()

        def compute(start: int, stop: int) -> list[dict]:
            return _attribute_chunk(dm, generator, questions[start:stop], retrieved[start:stop], batch_size)

        run_sharded(
            records_path,
            len(questions),
            chunk_size,
            compute,
            rank,
            world_size,
            barrier,
            progress,
            f"attributing {split}",
        )
    out = Path(out) if out is not None else folder / "attribution.json"
    if rank == 0:
        records = [json.loads(line) for line in records_path.read_text().splitlines()]
        document = {"task": dm.task.name, "split": split, "summary": summarize(records), "questions": records}
        write_text_atomic(out, json.dumps(document, indent=1))
    if barrier is not None:
        barrier()
    return out


__all__ = ["attention_over_prompt", "attribute", "eager_attention", "item_spans", "summarize", "token_spans"]
