"""The retrieval-results cache and the facade that the DataModule and the commands call.

For each split and retriever configuration the ranked item rows and scores, up to `k_max`, are
computed once and saved beside the index as ``results/<split>-<hash>.npz`` (atomically; the hash
covers the index manifest, the retriever's settings, `k_max` and `drop_identical`). Any k <= k_max,
any rank offset, a second epoch or a second run then costs numpy loads and slicing only: no
encoder, no FAISS (DataLoader workers can read it).
"""

from __future__ import annotations

import functools
import json
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
from filelock import FileLock
from tqdm.auto import tqdm

from lamp_pl.cache import (
    HASH_STORE,
    file_sha256,
    file_sha256_by_state,
    stable_hash,
    verify_files,
    write_file_atomic,
    write_text_atomic,
)
from lamp_pl.data.lamp import available_splits, split_files
from lamp_pl.data.stream import load_questions
from lamp_pl.errors import ConfigError
from lamp_pl.retrieval.build import build_profile_index, index_folder
from lamp_pl.retrieval.config import RetrievalConfig
from lamp_pl.retrieval.dated import retrieval_task
from lamp_pl.retrieval.hybrid import HybridRetriever, attach_source, prepare_members
from lamp_pl.retrieval.index import CacheError, JsonLines, read_manifest
from lamp_pl.retrieval.registry import make_retriever
from lamp_pl.retrieval.rerank import RerankedRetriever, attach_first_stage, first_stage_config
from lamp_pl.retrieval.retrievers import Retriever, SplitView, resolve_k
from lamp_pl.tasks import Task, get_task

logger = logging.getLogger(__name__)
RESULTS_FORMAT = 2  # 2: first_scores (a reranked list's first-stage scores)


@dataclass
class Retrieved:
    """The retrieved items of one question, best first, after k and offset."""

    question_id: str
    items: list[dict]
    scores: list[float]
    item_ids: list[str]
    first_scores: list[float] | None = None
    """Reranked: each item's first-stage score (`scores` are the cross-encoder's)."""


def cache_folder(cache_dir: str | Path, task: Task, config: RetrievalConfig, retriever: Retriever) -> Path:
    return index_folder(cache_dir, task, config.encoder_settings() if retriever.dense else None)


def results_key(index_hash: str, split: str, retriever: Retriever, config: RetrievalConfig) -> dict:
    return {
        "format": RESULTS_FORMAT,
        "index": index_hash,
        "split": split,
        "retriever": retriever.settings(),
        "k_max": config.k_max,
        "drop_identical": config.drop_identical,
    }


def results_path(folder: Path, key: dict) -> Path:
    return folder / "results" / f"{key['split']}-{stable_hash(key)}.npz"


class RetrievalResults:
    """One split's cached rankings (plain numpy, picklable): question q's list is
    ``items[offsets[q]:offsets[q+1]]`` (with `scores`, and `output_items` for `mixed`)."""

    FIELDS = ("question_ids", "offsets", "items", "scores", "output_items", "profile_sizes", "complete", "first_scores")

    def __init__(self, arrays: dict[str, np.ndarray]) -> None:
        self.__dict__.update(arrays)

    @staticmethod
    def checksum_path(path: Path) -> Path:
        """The record (size, blake2b) of a results file, written after it (the commit point)."""
        return path.with_name(path.name + ".blake2b")

    @classmethod
    def load(cls, path: Path, key: dict) -> RetrievalResults:
        """Read a results file, verified against its checksum record.

        Raises:
            FileNotFoundError: never computed.
            CacheError: damaged, unrecorded, or for another key.
        """
        try:
            record = json.loads(cls.checksum_path(path).read_text())
        except FileNotFoundError:
            if not path.exists():
                raise FileNotFoundError(path) from None
            raise CacheError(f"{path} has no checksum record (its writer was killed)") from None
        except (OSError, ValueError) as error:
            raise CacheError(f"{cls.checksum_path(path)} is unreadable ({error!r})") from None
        problems = verify_files(path.parent, {path.name: record})
        if problems:
            raise CacheError(f"{path} is damaged ({'; '.join(problems)})")
        try:
            with np.load(path) as data:
                arrays = {name: data[name] for name in (*cls.FIELDS, "key")}
        except FileNotFoundError:
            raise
        except (OSError, ValueError, KeyError, EOFError) as error:
            raise CacheError(f"{path} is unreadable ({error!r})") from None
        n = len(arrays["question_ids"])
        if (
            str(arrays.pop("key")) != stable_hash(key)
            or len(arrays["offsets"]) != n + 1
            or not (int(arrays["offsets"][-1]) == len(arrays["items"]) == len(arrays["scores"]))
        ):
            raise CacheError(f"{path} does not match its key or is truncated")
        return cls(arrays)

    def save(self, path: Path, key: dict) -> None:
        """Write the file atomically, then its checksum record (a file without one never loads)."""
        arrays = {n: getattr(self, n) for n in self.FIELDS}
        record = write_file_atomic(path, lambda stream: np.savez(stream, key=np.array(stable_hash(key)), **arrays))
        write_text_atomic(self.checksum_path(path), json.dumps(record))

    @classmethod
    def ensure(cls, path: Path, key: dict, compute: Callable[[], RetrievalResults]) -> bool:
        """Load the results at `path`, or (re)compute and save them under `<path>.lock` when
        missing or damaged (a valid file needs no lock). Returns whether they were computed."""
        try:
            cls.load(path, key)
            return False
        except FileNotFoundError:
            pass
        except CacheError as why:
            logger.warning("recomputing retrieval results: %s", why)
        path.parent.mkdir(parents=True, exist_ok=True)
        with FileLock(f"{path}.lock"):
            for stale in path.parent.glob(f".{path.name}.*"):  # temporaries of killed writers
                stale.unlink(missing_ok=True)
            try:
                cls.load(path, key)  # another process computed them while we waited
                return False
            except (FileNotFoundError, CacheError):
                compute().save(path, key)
        return True

    @classmethod
    def compute(cls, view: SplitView, retriever: Retriever, k_max: int, progress: bool = True) -> RetrievalResults:
        offsets, items, scores, outputs, complete, firsts = [0], [], [], [], [], []
        for q in tqdm(range(len(view)), desc=f"retrieving {view.split}", unit="q", disable=not progress):
            k = k_max if k_max > 0 else len(view.tables.profile(q))
            ranking = retriever.rank(view, q, k)
            items.append(ranking.items)
            scores.append(ranking.scores)
            if ranking.output_items is not None:
                outputs.append(ranking.output_items)
            if ranking.first_scores is not None:
                firsts.append(ranking.first_scores)
            offsets.append(offsets[-1] + len(ranking.items))
            complete.append(len(ranking.items) < k or k_max <= 0)

        def cat(parts: list[np.ndarray], dtype: type) -> np.ndarray:
            return np.concatenate(parts).astype(dtype) if parts else np.empty(0, dtype=dtype)

        return cls(
            {
                "question_ids": view.tables.question_ids,
                "offsets": np.array(offsets, dtype=np.int64),
                "items": cat(items, np.int64),
                "scores": cat(scores, np.float32),
                "output_items": cat(outputs, np.int64),
                "profile_sizes": np.diff(view.tables.offsets),
                "complete": np.array(complete, dtype=bool),
                "first_scores": cat(firsts, np.float32),
            }
        )

    def select(self, q: int, k: float, offset: int = 0) -> slice:
        """Rows of question q's items for `k` (see `resolve_k`) after skipping `offset`."""
        if offset < 0:
            raise ConfigError(f"offset must be >= 0, got {offset}")
        lo, hi = int(self.offsets[q]), int(self.offsets[q + 1])
        want = offset + resolve_k(k, int(self.profile_sizes[q]))
        if want > hi - lo and not self.complete[q]:
            raise ConfigError(
                f"k={k} with offset={offset} needs {want} ranked items for question "
                f"{str(self.question_ids[q])!r}, but only {hi - lo} are cached (k_max); "
                "prepare the retrieval again with a larger k_max (or -1 for whole profiles)"
            )
        return slice(lo + min(offset, hi - lo), lo + min(want, hi - lo))


def prepare_retrieval(
    task: str | Task,
    data_dir: str | Path,
    splits: Sequence[str],
    config: RetrievalConfig,
    cache_dir: str | Path,
    *,
    rank: int = 0,
    world_size: int = 1,
    barrier: Callable[[], None] | None = None,
    progress: bool = True,
) -> dict:
    """Build or validate the index (dense retrievers only) and each split's results cache.

    Every DDP rank calls it; encoding is sharded over ranks, rank 0 computes the results, and a
    valid cache is a no-op everywhere. The index covers every split present in `data_dir` (so
    fit, test and predict share one build), the results only `splits`.

    Returns:
        A JSON-able summary: users, questions, items, distinct_texts, encoded (texts encoded by this
        call on this rank), dim, seconds, items_per_second (encoded per encoding second), cache_dir,
        reused (nothing built or computed), and per-split results files.
    """
    kwargs = {"rank": rank, "world_size": world_size, "barrier": barrier, "progress": progress}
    if config.retriever == "selected":
        from lamp_pl.retrieval.selected import prepare_selected

        return prepare_selected(prepare_retrieval, task, data_dir, splits, config, cache_dir, **kwargs)
    retriever = make_retriever(config.retriever, config)
    if isinstance(retriever, HybridRetriever):  # the members' own caches first (reused when there)
        prepare_members(prepare_retrieval, task, data_dir, splits, config, cache_dir, **kwargs)
        attach_source(retriever, config, functools.partial(open_results, task, cache_dir=cache_dir))
    if isinstance(retriever, RerankedRetriever):  # the first stage's cache first (reused when there)
        prepare_retrieval(task, data_dir, splits, first_stage_config(config), cache_dir, **kwargs)
        attach_first_stage(retriever, config, functools.partial(open_results, task, cache_dir=cache_dir))
    start, task = time.perf_counter(), retrieval_task(get_task(task), config)
    covered = sorted(set(available_splits(data_dir, task)) | set(splits))
    index, report = build_profile_index(
        task,
        data_dir,
        covered,
        cache_dir,
        config.encoder_settings() if retriever.dense else None,
        rank=rank,
        world_size=world_size,
        barrier=barrier,
        progress=progress,
    )
    computed, error = {}, None
    if isinstance(retriever, RerankedRetriever):  # every rank scores its shard of the pairs
        _score_pending(retriever, task, data_dir, splits, config, index, rank, world_size, barrier)
    if rank == 0:
        try:
            for split in splits:
                key = results_key(index.hash, split, retriever, config)

                def compute(split: str = split) -> RetrievalResults:
                    # Ids and inputs only: the profiles are in the index already.
                    questions = load_questions(data_dir, task, split, outputs=False)
                    view = SplitView(task, index, split, questions, config.drop_identical)
                    return RetrievalResults.compute(view, retriever, config.k_max, progress)

                computed[split] = RetrievalResults.ensure(results_path(index.folder, key), key, compute)
        except Exception as failure:  # noqa: BLE001 -- re-raised after the barrier so no rank hangs
            error = failure
    if world_size > 1:
        barrier()
    if error is not None:
        raise error
    counts, encoded = index.manifest["counts"], report["encoded"]
    return {
        "task": task.name,
        "retriever": config.retriever,
        "users": counts["users"],
        "questions": sum(counts["questions"].values()),
        "items": counts["items"],
        "distinct_texts": counts["texts"],
        "distinct_item_texts": counts["distinct_item_texts"],
        "encoded": encoded,
        "dim": counts["dim"],
        "seconds": round(time.perf_counter() - start, 4),
        "items_per_second": round(encoded / report["encode_seconds"], 2) if encoded else None,
        "cache_dir": report["folder"],
        "reused": report["reused"] and not any(computed.values()),
        "index_reused": report["reused"],
        "results_computed": computed,
    }


def _score_pending(retriever, task, data_dir, splits, config, index, rank, world_size, barrier) -> None:
    """Cross-encoder scores of the splits whose reranked results are not cached yet."""
    views = []
    for split in splits:
        key = results_key(index.hash, split, retriever, config)
        try:
            RetrievalResults.load(results_path(index.folder, key), key)
        except (FileNotFoundError, CacheError):
            questions = load_questions(data_dir, task, split, outputs=False)
            views.append(SplitView(task, index, split, questions, config.drop_identical))
    if views:
        retriever.score_splits(views, rank, world_size, barrier, index.folder / "results")


def _check_inputs(task: Task, data_dir: str | Path, folder: Path, manifest: dict) -> None:
    """The questions files must still be those the cache was built from (size and mtime first,
    the sha256 only when those moved)."""
    for split, recorded in manifest["key"]["inputs"].items():
        path = split_files(data_dir, task, split)[0]
        stat = path.stat()
        if (
            manifest["info"].get("stat", {}).get(split) != [stat.st_size, stat.st_mtime_ns]
            and file_sha256(path) != recorded["sha256"]
        ):
            raise CacheError(
                f"{path} changed since the retrieval cache {folder} was built; "
                "run prepare_retrieval (`lamp-pl index`) again"
            )


def load_retrieved(
    task: str | Task,
    data_dir: str | Path,
    split: str,
    config: RetrievalConfig,
    cache_dir: str | Path,
    k: float,
    offset: int = 0,
) -> list[Retrieved]:
    """Each question's retrieved items from the results cache; never encodes nor searches.

    Args:
        k: items per question (an integer), or a fraction of the question's profile in (0, 1).
        offset: ranked items to skip first.

    Raises:
        CacheError: the cache is missing or stale: run `prepare_retrieval` (``lamp-pl index``).
        ValueError: k + offset exceeds the cached k_max for a question with a longer profile.
    """
    if config.retriever == "selected":
        from lamp_pl.retrieval.selected import load_selected

        return load_selected(load_retrieved, task, data_dir, split, config, cache_dir, k, offset)
    task = retrieval_task(get_task(task), config)
    retriever = make_retriever(config.retriever, config)
    folder = cache_folder(cache_dir, task, config, retriever)
    hint = f"run prepare_retrieval (`lamp-pl index`) for task {task.name}, retriever {config.retriever!r}"
    try:
        manifest = read_manifest(folder)
    except CacheError as error:
        raise CacheError(f"no retrieval cache to load ({error}); {hint}") from None
    if retriever.dense and manifest["key"]["encoder"] != config.encoder_settings().key():
        raise CacheError(f"{folder} was built with other encoder settings; {hint}")
    _check_inputs(task, data_dir, folder, manifest)
    key = results_key(stable_hash(manifest["key"]), split, retriever, config)
    try:
        results = RetrievalResults.load(results_path(folder, key), key)
    except FileNotFoundError:
        raise CacheError(f"no cached {split} results for {asdict(config)} under {folder}; {hint}") from None
    items = JsonLines(folder / "items.jsonl")
    output_field = task.output_field
    retrieved = []
    for q, qid in enumerate(results.question_ids.tolist()):
        rows = results.select(q, k, offset)
        chosen = [items[r] for r in results.items[rows].tolist()]
        if len(results.output_items):  # mixed: A's item with B's output
            others = [items[r] for r in results.output_items[rows].tolist()]
            chosen = [
                {**a, output_field: b[output_field], "id": f"{a['id']}+{b['id']}"}
                for a, b in zip(chosen, others, strict=True)
            ]
        firsts = results.first_scores[rows].tolist() if len(results.first_scores) else None
        retrieved.append(Retrieved(qid, chosen, results.scores[rows].tolist(), [str(i["id"]) for i in chosen], firsts))
    return retrieved


def open_results(
    task: str | Task, split: str, config: RetrievalConfig, cache_dir: str | Path
) -> tuple[RetrievalResults, dict]:
    """The cached results of `split` under `config` and their index's manifest.

    Raises:
        CacheError: not prepared, or damaged.
    """
    task = retrieval_task(get_task(task), config)
    retriever = make_retriever(config.retriever, config)
    folder = cache_folder(cache_dir, task, config, retriever)
    manifest = read_manifest(folder)
    key = results_key(stable_hash(manifest["key"]), split, retriever, config)
    try:
        return RetrievalResults.load(results_path(folder, key), key), manifest
    except FileNotFoundError:
        raise CacheError(f"no cached {split} results of {config.retriever} under {folder}") from None


def results_fingerprint(task: str | Task, split: str, config: RetrievalConfig, cache_dir: str | Path) -> str:
    """A hash of the results file `load_retrieved` reads for `split`: its key (which names the
    index it was ranked on, so an encoder folder replaced in place changes it) and its content.

    Raises:
        CacheError: no retrieval cache has been built for this configuration.
    """
    if config.retriever == "selected":
        from lamp_pl.retrieval.selected import selected_fingerprint

        return selected_fingerprint(results_fingerprint, task, split, config, cache_dir)
    task = retrieval_task(get_task(task), config)
    retriever = make_retriever(config.retriever, config)
    folder = cache_folder(cache_dir, task, config, retriever)
    key = results_key(stable_hash(read_manifest(folder)["key"]), split, retriever, config)
    path = results_path(folder, key)
    if not path.is_file():
        raise CacheError(f"no cached {split} results under {folder}; run prepare_retrieval (`lamp-pl index`)")
    return stable_hash([key, file_sha256_by_state(path, Path(cache_dir) / HASH_STORE)])


__all__ = [
    "RetrievalConfig",
    "RetrievalResults",
    "Retrieved",
    "load_retrieved",
    "open_results",
    "prepare_retrieval",
    "results_fingerprint",
]
