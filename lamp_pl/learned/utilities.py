"""Per-retriever utilities: the generator's score of each question's prompt under each retriever
of a pool (RSPG's training signal and the oracle).

A pool maps a name to `RetrievalConfig` overrides, e.g. ``{"contriever": {"retriever":
"contriever"}, "bm25": {"retriever": "bm25"}, "recency": {"retriever": "recency"}, "ropg":
{"retriever": "contriever", "encoder": "runs/ropg/encoder"}, "none": {"retriever": "none"}}``.
For each question the prompt is built from that retriever's top-k items (the data module's k,
offset and prompt options) and the generator scores the gold (sum of token log-probabilities)
and, with `with_metric`, the task metric of its greedy output. Records are cached under
``<cache>/<task>/retriever_utilities/<split>-<hash>/utilities.jsonl``, keyed by every member's
results fingerprint, the checkpoint's sha256, k, offset and the prompt settings; the work is
chunked, resumable and sharded over ranks like `score_items` (`run_sharded`).
"""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import Any

from lamp_pl.cache import file_sha256_cached, stable_hash
from lamp_pl.data.lamp import load_split
from lamp_pl.errors import InputFileError, reading
from lamp_pl.learned.likelihood import log_likelihoods
from lamp_pl.learned.scoring import _generate, example_metric, load_generator, run_sharded, world
from lamp_pl.retrieval.selected import member_config
from lamp_pl.retrieval.view import RetrievalView

# 2: generated outputs truncate the prompt as the data module does; 3: records carry the query.
RETRIEVER_UTILITIES_FORMAT = 3
DEFAULT_POOL: dict[str, dict] = {
    "none": {"retriever": "none"},
    "contriever": {"retriever": "contriever"},
    "bm25": {"retriever": "bm25"},
    "recency": {"retriever": "recency"},
}


def pool_configs(config: Any, pool: dict[str, dict]) -> dict[str, Any]:
    """Each pool member's `RetrievalConfig` (the data module's, with the member's overrides)."""
    if not pool:
        raise ValueError("the retriever pool is empty")
    return {name: member_config(config, overrides) for name, overrides in pool.items()}


def pool_views(datamodule, split: str, pool: dict[str, dict]) -> dict[str, RetrievalView]:
    """Each pool member's view of `split`: the data module's, ranked by the member's settings."""
    view = datamodule.view(split)
    return {name: view.using(config) for name, config in pool_configs(datamodule.retrieval, pool).items()}


def _prompts(dm, questions, retrieved: dict[str, list]) -> tuple[list[str], list[str]]:
    prompts, targets = [], []
    for q, question in enumerate(questions):
        for name in retrieved:
            items = retrieved[name][q].items if dm.k != 0 else []
            prompts.append(dm.prompt_for(question, items))
            targets.append(question.output)
    return prompts, targets


def _score_chunk(dm, generator, questions, retrieved: dict[str, list], batch_size: int, with_metric: bool) -> list:
    prompts, targets = _prompts(dm, questions, retrieved)
    scores = log_likelihoods(
        generator.model, generator.tokenizer, prompts, targets, batch_size, dm.max_input_length, dm.max_target_length
    )
    metrics: list[float | None] = [None] * len(prompts)
    if with_metric:
        max_new = int(getattr(generator, "hparams", {}).get("max_new_tokens", dm.max_target_length))
        outs = [
            g
            for s in range(0, len(prompts), batch_size)
            for g in _generate(generator, prompts[s : s + batch_size], max_new, dm.max_input_length)
        ]
        metrics = [example_metric(dm.task, g, t) for g, t in zip(outs, targets)]
    names, records = list(retrieved), []
    for q, question in enumerate(questions):
        at = q * len(names)
        records.append(
            {
                "id": question.id,
                "user": question.user,
                "input": question.input,
                "query": dm.task.query(question.input),
                "gold": question.output,
                "items": {n: [dm.task.item_text(i) for i in retrieved[n][q].items] for n in names},
                "utilities": {
                    n: {"log_likelihood": scores[at + j], "metric": metrics[at + j]} for j, n in enumerate(names)
                },
            }
        )
    return records


def score_retrievers(
    datamodule,
    ckpt_path: str | Path,
    pool: dict[str, dict] | None = None,
    split: str = "train",
    *,
    generator: Any = None,
    batch_size: int = 32,
    chunk_size: int = 64,
    with_metric: bool = True,
    rank: int | None = None,
    world_size: int | None = None,
    progress: bool = True,
) -> Path:
    """Score each question's prompt under each pool retriever; cached, resumable and sharded.

    Args:
        datamodule: The `LaMPDataModule` whose k, offset, prompt settings and retrieval config
            (each member's base) build the prompts.
        ckpt_path: The generator's Lightning checkpoint (its sha256 keys the cache).
        pool: name -> `RetrievalConfig` overrides (default `DEFAULT_POOL`).
        split: The split scored (it needs gold outputs).
        generator: The loaded LightningModule of `ckpt_path` (default: load it).
        batch_size: Prompts per forward pass.
        chunk_size: Questions per resumable chunk file.
        with_metric: Also generate greedily and store the task metric (higher is better).
        rank, world_size: This process's place (default: the process group's, else 0 of 1).
        progress: Show progress bars.

    Returns:
        The ``utilities.jsonl`` file: per question ``id``, ``user``, ``input``, ``gold``, ``items``
        (retriever -> item texts) and ``utilities`` (retriever -> ``log_likelihood``, ``metric``).
    """
    rank, world_size, barrier = world(rank, world_size)
    dm, views = datamodule, pool_views(datamodule, split, pool or DEFAULT_POOL)
    if rank == 0:
        dm.write_synthetic_data()
    used = {name: view for name, view in views.items() if view.config.retriever != "none"}
    for view in used.values():
        view.prepare(rank=rank, world_size=world_size, barrier=barrier, progress=progress)
    key = {
        "format": RETRIEVER_UTILITIES_FORMAT,
        "members": {
            n: [dataclasses.asdict(v.config), v.fingerprint() if n in used else None] for n, v in views.items()
        },
        "checkpoint": file_sha256_cached(ckpt_path),
        "split": split,
        "k": dm.k,
        "offset": dm.offset,
        "prompt": dataclasses.asdict(dm.prompt),
        "tokenizer": dm.tokenizer_name,
        "lengths": [dm.max_input_length, dm.max_target_length],
        "metric": with_metric,
    }
    final = (
        Path(dm.cache_dir)
        / dm.task.cache_name
        / "retriever_utilities"
        / f"{split}-{stable_hash(key)}"
        / "utilities.jsonl"
    )
    if final.is_file():
        return final
    questions = load_split(dm.data_dir, dm.task, split)
    if any(q.output is None for q in questions):
        raise ValueError(f"split {split!r} of {dm.task.name} has no gold outputs to score retrievers against")
    retrieved = {n: v.retrieved() if n in used else [_Empty()] * len(questions) for n, v in views.items()}
    generator = generator if generator is not None else load_generator(ckpt_path)
    generator.eval()

    def compute(start: int, stop: int) -> list[dict]:
        part = {n: r[start:stop] for n, r in retrieved.items()}
        return _score_chunk(dm, generator, questions[start:stop], part, batch_size, with_metric)

    return run_sharded(
        final, len(questions), chunk_size, compute, rank, world_size, barrier, progress, f"scoring {split} retrievers"
    )


@dataclasses.dataclass
class _Empty:
    """The retrieval of `none`: no items."""

    items: tuple = ()


def load_retriever_utilities(path: str | Path) -> list[dict]:
    """The records of a ``utilities.jsonl`` written by `score_retrievers`.

    Raises:
        InputFileError: the file cannot be read as UTF-8 text, or a line is not such a record
            (the message names the file and line).
    """
    with reading(path, "utilities file"):
        text = Path(path).read_text(encoding="utf-8")
    records = []
    for number, line in enumerate(text.splitlines(), 1):
        try:
            record = json.loads(line)
            if set(record["utilities"]) != set(record["items"]):
                raise ValueError("utilities and items name different retrievers")
        except (ValueError, KeyError, TypeError) as error:
            detail = " ".join(str(error).split())
            raise InputFileError(f"{path}, line {number}: bad retriever-utilities record ({detail})") from None
        records.append(record)
    return records


__all__ = ["DEFAULT_POOL", "load_retriever_utilities", "pool_configs", "pool_views", "score_retrievers"]
