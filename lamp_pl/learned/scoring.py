"""`score_items`: the generator's utility of each candidate profile item (ROPG's training signal).

For each question of a split and each of its top-N items in a retriever's cached ranking, the
prompt is rebuilt with that single item and the generator scores the gold output (sum of token
log-probabilities; optionally also the task metric of a greedy generation). The result is cached
beside the retrieval results, in ``utilities/<split>-<hash>/utilities.jsonl``, keyed by the
retrieval results key, the checkpoint file's sha256, N, the split and the prompt settings.

Work is cut into fixed chunks of questions; under DDP rank r scores chunks r, r + W, ... and each
chunk is written atomically as soon as it is done, so a killed run resumes where it stopped and
the shared cache folder is where rank 0 gathers the chunks. The batches of a chunk do not depend
on the number of ranks, so one process and W processes write the same file.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from tqdm.auto import tqdm

from lamp_pl.cache import file_sha256_cached, stable_hash, write_text_atomic
from lamp_pl.data.lamp import load_split
from lamp_pl.errors import ConfigError, reading
from lamp_pl.learned.likelihood import is_seq2seq, log_likelihoods
from lamp_pl.lightning.checkpoints import check_checkpoint
from lamp_pl.resolve import resolve_data_section

UTILITIES_FORMAT = 2  # 2: generated outputs truncate the prompt as the data module does


def world(rank: int | None = None, world_size: int | None = None) -> tuple[int, int, Callable[[], None] | None]:
    """(rank, world size, barrier): the given values, else those of an initialised process group."""
    import torch.distributed as dist

    if rank is None and dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size(), dist.barrier
    return rank or 0, world_size or 1, None


def load_generator(ckpt_path: str | Path, module_class: Any = None, device: str = "cpu") -> Any:
    """The LightningModule of a checkpoint, in eval mode (the generator's family decides its class)."""
    if module_class is None:
        from lamp_pl.lightning.module import LaMPModel

        module_class = LaMPModel
    check_checkpoint(ckpt_path)  # refused in lamp_pl's words, before Lightning reads it
    return module_class.load_from_checkpoint(str(ckpt_path), map_location=device, weights_only=True).eval()


def example_metric(task, prediction: str, gold: str) -> float:
    """The task's checkpoint metric on one example, signed so that higher is better."""
    from lamp_pl.metrics.lamp import build_metrics

    metric = build_metrics(task.metric_kind, task.labels)
    metric.update([prediction], [gold])
    value = float(metric.compute()[task.monitor])
    return -value if task.monitor_mode == "min" else value


def learned_folder(datamodule, kind: str, ckpt_path: str | Path, split: str, settings: dict) -> Path:
    """``<retrieval cache>/<kind>/<split>-<hash>``: the hash covers the retrieval results key, the
    checkpoint's sha256, the split, the prompt settings and `settings`."""
    view = datamodule.view(split)  # its folder is the dated task\'s own index under use_date
    folder, retrieval = view.folder, view.results_key()
    key = {
        "format": UTILITIES_FORMAT,
        "results": stable_hash(retrieval),
        "checkpoint": file_sha256_cached(ckpt_path),
        "split": split,
        "prompt": dataclasses.asdict(datamodule.prompt),
        "tokenizer": datamodule.tokenizer_name,
        "max_input_length": datamodule.max_input_length,
        "max_target_length": datamodule.max_target_length,
        **settings,
    }
    return folder / kind / f"{split}-{stable_hash(key)}"


def utilities_folder(datamodule, ckpt_path: str | Path, candidates: int, split: str, with_metric: bool) -> Path:
    """Where the utilities of this (retrieval results, checkpoint, N, split, prompt) live."""
    return learned_folder(datamodule, "utilities", ckpt_path, split, {"candidates": candidates, "metric": with_metric})


def question_group(question) -> str:
    """Questions that share a profile: the user id of time-based splits, else a digest of the
    profile's item ids (user-based splits give each question its own copy of the profile)."""
    return (
        question.user_id
        if question.user_id is not None
        else stable_hash(sorted(str(i["id"]) for i in question.profile))
    )


def _generate(generator, prompts: list[str], max_new_tokens: int, max_input_length: int | None = None) -> list[str]:
    """Greedy outputs of `prompts`, truncated to `max_input_length` tokens as the data module
    truncates them (so a metric here is the one `test` reports for the same prompt)."""
    model, tokenizer = generator.model, generator.tokenizer
    cut = {"truncation": True, "max_length": max_input_length} if max_input_length else {}
    if not is_seq2seq(model):  # causal: one prompt at a time, so no padding side matters
        outs = []
        for prompt in prompts:
            ids = tokenizer(prompt, return_tensors="pt", **cut).to(model.device)
            new = model.generate(**ids, max_new_tokens=max_new_tokens, do_sample=False)[0, ids["input_ids"].shape[1] :]
            outs.append(tokenizer.decode(new, skip_special_tokens=True).strip())
        return outs
    ids = tokenizer(prompts, return_tensors="pt", padding=True, **cut).to(model.device)
    out = model.generate(**ids, max_new_tokens=max_new_tokens, num_beams=1, do_sample=False)
    return [t.strip() for t in tokenizer.batch_decode(out, skip_special_tokens=True)]


def _score_chunk(datamodule, generator, questions, retrieved, batch_size: int, with_metric: bool) -> list[dict]:
    task = datamodule.task
    prompts, targets, owners = [], [], []
    for q, (question, ranked) in enumerate(zip(questions, retrieved)):
        for item in ranked.items:
            prompts.append(datamodule.prompt_for(question, [item]))
            targets.append(question.output)
            owners.append(q)
    scores = log_likelihoods(
        generator.model,
        generator.tokenizer,
        prompts,
        targets,
        batch_size,
        datamodule.max_input_length,
        datamodule.max_target_length,
    )
    metrics: list[float | None] = [None] * len(prompts)
    if with_metric:
        max_new = int(getattr(generator, "hparams", {}).get("max_new_tokens", datamodule.max_target_length))
        generated = [
            g
            for s in range(0, len(prompts), batch_size)
            for g in _generate(generator, prompts[s : s + batch_size], max_new, datamodule.max_input_length)
        ]
        metrics = [example_metric(task, g, t) for g, t in zip(generated, targets)]
    records = []
    for q, (question, ranked) in enumerate(zip(questions, retrieved)):
        rows = [i for i, owner in enumerate(owners) if owner == q]
        records.append(
            {
                "id": question.id,
                "user": question.user,
                "group": question_group(question),
                "query": task.query(question.input) or "",
                "gold": question.output,
                "item_ids": ranked.item_ids,
                "item_texts": [task.item_text(item) for item in ranked.items],
                "log_likelihoods": [scores[i] for i in rows],
                "metrics": [metrics[i] for i in rows] if with_metric else None,
            }
        )
    return records


def score_items(
    datamodule,
    ckpt_path: str | Path,
    candidates: int = 20,
    split: str = "train",
    *,
    generator: Any = None,
    batch_size: int = 32,
    chunk_size: int = 64,
    with_metric: bool = False,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
) -> Path:
    """Score each question's top-`candidates` items with the generator; cached and resumable.

    Args:
        datamodule: The data pipeline (`LaMPData`) whose retrieval cache ranks the candidates and whose
            prompt settings (options, budget, tokenizer) build the single-item prompts.
        ckpt_path: The generator's Lightning checkpoint (its sha256 keys the cache).
        candidates: Top-N items of each question to score (needs ``retrieval.k_max >= N``).
        split: The split whose questions are scored (it needs gold outputs).
        generator: The already loaded LightningModule of `ckpt_path` (default: load it).
        batch_size: (prompt, gold) pairs per forward pass.
        chunk_size: Questions per resumable chunk file.
        with_metric: Also generate greedily with each single item and store the task metric.
        rank: This process's rank (default: the process group's, else 0).
        world_size: Number of processes (default: the process group's, else 1).
        progress: Show a progress bar over this rank's chunks.

    Returns:
        The ``utilities.jsonl`` file: one JSON record per question, in split order, with ``id``,
        ``user``, ``group`` (see `question_group`), ``query``, ``gold``, ``item_ids``, ``item_texts``, ``log_likelihoods`` and
        ``metrics`` (None unless `with_metric`).
    """
    rank, world_size, barrier = world(rank, world_size)
    if generator is None:
        check_checkpoint(ckpt_path)
    resolve_data_section(datamodule)  # tokenizer and encoder, before any encoding
    if datamodule.retrieval.k_max != -1 and datamodule.retrieval.k_max < candidates:
        raise ConfigError(
            f"candidates={candidates} exceeds retrieval.k_max={datamodule.retrieval.k_max}: "
            "raise data.retrieval.k_max (the ranking is cached up to k_max)"
        )
    view = datamodule.prepare_view(split, rank=rank, world_size=world_size, barrier=barrier, progress=progress)
    folder = utilities_folder(datamodule, ckpt_path, candidates, split, with_metric)
    final = folder / "utilities.jsonl"
    if final.is_file():
        return final
    questions = load_split(datamodule.data_dir, datamodule.task, split)
    if any(q.output is None for q in questions):
        raise ConfigError(f"split {split!r} of {datamodule.task.name} has no gold outputs to score items against")
    retrieved = view.top(candidates).retrieved()
    generator = generator if generator is not None else load_generator(ckpt_path)
    generator.eval()

    def compute(start: int, stop: int) -> list[dict]:
        return _score_chunk(
            datamodule, generator, questions[start:stop], retrieved[start:stop], batch_size, with_metric
        )

    return run_sharded(
        final, len(questions), chunk_size, compute, rank, world_size, barrier, progress, f"scoring {split} items"
    )


def run_sharded(
    final: Path,
    size: int,
    chunk_size: int,
    compute: Callable[[int, int], list[dict]],
    rank: int,
    world_size: int,
    barrier: Callable[[], None] | None,
    progress: bool,
    desc: str,
) -> Path:
    """Compute records of questions [0, size) in chunks; rank r does chunks r, r + W, ...; each
    chunk is an atomic JSONL file beside `final` (skipped when present: resumable); rank 0 joins
    them, in order, into `final`."""
    chunks = list(range(0, size, chunk_size))
    paths = [final.parent / "chunks" / f"chunk-{start // chunk_size:06d}.jsonl" for start in chunks]
    with torch.no_grad():
        for start, path in tqdm(
            list(zip(chunks, paths))[rank::world_size], desc=desc, unit="chunk", disable=not progress
        ):
            if not path.is_file():
                records = compute(start, start + chunk_size)
                write_text_atomic(path, "".join(json.dumps(r) + "\n" for r in records))
    if barrier is not None:
        barrier()
    if rank == 0:
        write_text_atomic(final, "".join(path.read_text() for path in paths))
    if barrier is not None:
        barrier()
    return final


def load_utilities(path: str | Path) -> list[dict]:
    """The records of a ``utilities.jsonl`` written by `score_items`."""
    path = Path(path)
    records = []
    with reading(path, "utilities file"):
        text = path.read_text(encoding="utf-8")
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
            if len(record["item_texts"]) != len(record["log_likelihoods"]):
                raise ValueError("item_texts and log_likelihoods differ in length")
        except (ValueError, KeyError) as error:
            raise ConfigError(f"{path}, line {number}: bad utilities record ({error})") from None
        records.append(record)
    return records


__all__ = [
    "learned_folder",
    "load_generator",
    "load_utilities",
    "run_sharded",
    "score_items",
    "utilities_folder",
    "world",
]
