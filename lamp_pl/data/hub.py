"""A task's data read with `datasets`: a Hugging Face dataset (hub name + config) or a local copy.

`DatasetSource` names the data (``data.source`` of a config); `materialize` loads it with
`datasets.load_from_disk` (a folder written by ``save_to_disk``) or `datasets.load_dataset` (a hub
name, from the hub or its local cache, or a local copy of the hub repository), maps each record
into LaMP's question model (`lamp_pl.data.lamp.validate_question` / `validate_gold`, so a bad
record is named as the LaMP reader names it: dataset and split, record, field) and writes the
splits as LaMP files into a cache folder, atomically and checksummed (`lamp_pl.cache.atomic_folder`).
That folder is named after the dataset's identity: name, config, revision and each split's
`datasets` fingerprint, never a hash of its files; the rest of the pipeline reads it as a LaMP
data folder. ``HF_DATASETS_OFFLINE=1`` is honoured by `datasets` itself; when neither the hub nor a
local copy has the data, one `MissingDataError` line says what to fetch and where to put it.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lamp_pl.cache import atomic_folder, stable_hash
from lamp_pl.data.lamp import LaMPDataError, validate_gold, validate_question
from lamp_pl.errors import InputFileError, MissingDataError
from lamp_pl.tasks import Task
from lamp_pl.tasks.longform import HubSource, source_of

FORMAT = 1
"""Version of the materialized folder; bump it when the record mapping changes."""


@dataclass(frozen=True)
class DatasetSource:
    """A task's data as a Hugging Face dataset (``data.source``)."""

    dataset: str = ""
    """Hub name (e.g. ``LongLaMP/LongLaMP``), a ``save_to_disk`` folder, or a local copy of the hub
    repository; empty = the task's published dataset."""
    name: str | None = None
    """Config (subset), e.g. ``abstract_generation_user``; default: the task's."""
    revision: str | None = None
    """Hub revision (branch, tag or commit) to load."""


def _is_saved(folder: Path) -> bool:
    return (folder / "dataset_dict.json").is_file() or (folder / "state.json").is_file()


def _load_saved(folder: Path) -> Any:
    """`datasets.load_from_disk(folder)`; a damaged copy (a truncated Arrow file, a missing
    state file) is one `InputFileError` naming the split's folder and its Arrow files."""
    import datasets

    try:
        return datasets.load_from_disk(str(folder))
    except Exception as error:  # noqa: BLE001 -- pyarrow's and datasets' errors name no file
        why = " ".join(str(error).split())[:200] or type(error).__name__
        splits = [folder] if (folder / "state.json").is_file() else sorted(p for p in folder.iterdir() if p.is_dir())
        for split in splits:
            try:
                datasets.load_from_disk(str(split))
            except Exception:  # noqa: BLE001 -- this split is the damaged one
                files = ", ".join(p.name for p in sorted(split.glob("*.arrow"))) or "no Arrow file"
                raise InputFileError(
                    f"{split}: split {split.name!r} of the saved dataset cannot be read ({files}: {why}); "
                    "save the dataset again (save_to_disk)"
                ) from None
        raise InputFileError(f"{folder}: the saved dataset cannot be read ({why}); save it again") from None


def _label(source: DatasetSource) -> str:
    return f"{source.dataset}[{source.name}]" if source.name else source.dataset


def resolve(source: DatasetSource | dict | None, task: Task) -> tuple[DatasetSource, HubSource]:
    """The source with the task's defaults filled in, and the task's record mapping.

    Raises:
        ValueError: the task is not read from a dataset (LaMP tasks read JSON files).
    """
    source = DatasetSource(**source) if isinstance(source, dict) else source or DatasetSource()
    spec = source_of(task.name)
    if spec is None:
        raise ValueError(
            f"data.source: task {task.name} is read from LaMP JSON files (data.data_dir); a dataset "
            "source is for the LongLaMP and LaMP-QA tasks"
        )
    return DatasetSource(source.dataset or spec.dataset, source.name or spec.name, source.revision), spec


def load(source: DatasetSource) -> Any:
    """The `datasets.DatasetDict` of a source (local folders first, then the hub or its cache).

    Raises:
        MissingDataError: neither the hub (or offline mode) nor a local copy has it (one line).
    """
    import datasets

    path = Path(source.dataset).expanduser()
    if path.is_dir():
        for folder in (path / source.name, path) if source.name else (path,):
            if _is_saved(folder):
                return _load_saved(folder)
    offline = os.environ.get("HF_DATASETS_OFFLINE", "") not in ("", "0") or datasets.config.HF_HUB_OFFLINE
    try:
        return datasets.load_dataset(source.dataset, source.name, revision=source.revision)
    except Exception as error:  # noqa: BLE001 -- any failure to find the data is the same user problem
        why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
        raise MissingDataError(
            f"{_label(source)}: not found on the Hugging Face hub"
            + (" (HF_DATASETS_OFFLINE is set)" if offline else "")
            + f" nor as a local copy ({type(error).__name__}: {why[:200]}); run `lamp-pl download --task "
            "<task>` for what to fetch, or set data.source.dataset to a folder written by save_to_disk"
        ) from None


def fingerprints(data: Any, spec: HubSource, source: DatasetSource) -> dict[str, dict[str, str]]:
    """LaMP split -> its dataset split and `datasets` fingerprint, for the splits present."""
    found = {}
    for split, hub_split in spec.splits:
        if hub_split in data:
            found[split] = {"split": hub_split, "fingerprint": str(getattr(data[hub_split], "_fingerprint", ""))}
    if not found:
        names = ", ".join(hub for _, hub in spec.splits)
        raise MissingDataError(f"{_label(source)}: none of the splits {names} (it has {', '.join(data)})")
    return found


def _item_id(item: dict) -> str:
    """An id for a profile item published without one (LongLaMP's reviews): its content's hash."""
    return "h" + hashlib.blake2b(json.dumps(item, sort_keys=True).encode(), digest_size=8).hexdigest()


def map_record(record: dict, index: int, spec: HubSource) -> dict:
    """A dataset record as a LaMP questions record (id, input, profile, user_id), before validation."""
    profile = record.get("profile")
    if isinstance(profile, list):
        items = []
        for item in profile:
            if isinstance(item, dict):
                item = dict(item)
                if "id" not in item:
                    item["id"] = _item_id(item)
                for name in spec.number_fields:
                    value = item.get(name)
                    if isinstance(value, int | float) and not isinstance(value, bool):
                        item[name] = str(value)  # as the LongLaMP prompt code formats it
            items.append(item)
        profile = items
    mapped = {"id": str(index) if spec.id_field is None else record.get(spec.id_field), "profile": profile}
    if spec.input_field in record:
        mapped["input"] = record[spec.input_field]
    if spec.user_field is not None and record.get(spec.user_field) is not None:
        mapped["user_id"] = record[spec.user_field]
    return mapped


def _judge_record(where: str, record: dict, index: int, qid: str, spec: HubSource) -> dict:
    """LaMP-QA's question, narrative and rubric aspects of one record, validated."""
    kept: dict[str, Any] = {"id": qid}
    for name in spec.judge_fields:
        value = record.get(name)
        if name == "rubric_aspects":
            if not isinstance(value, list) or not value:
                raise LaMPDataError(where, "expected a non-empty list of aspects", index, qid, name)
            for position, aspect in enumerate(value):
                for part in ("aspect", "reason", "evidence"):
                    if not isinstance(aspect, dict) or not isinstance(aspect.get(part), str):
                        raise LaMPDataError(where, "expected a string", index, qid, f"{name}[{position}].{part}")
            value = [{part: a[part] for part in ("aspect", "reason", "evidence")} for a in value]
        elif not isinstance(value, str):
            raise LaMPDataError(where, "expected a string", index, qid, name)
        kept[name] = value
    return kept


def _json_array(path: Path, values: Iterator[Any], head: str = "[", tail: str = "]") -> None:
    """Write a JSON array one value at a time (memory holds one record)."""
    with open(path, "w", encoding="utf-8") as stream:
        stream.write(head)
        for position, value in enumerate(values):
            stream.write(("," if position else "") + "\n" + json.dumps(value, ensure_ascii=False))
        stream.write("\n" + tail)


def _write_split(folder: Path, task: Task, split: str, data: Any, spec: HubSource, where: str) -> None:
    """Validate one split record by record and write its LaMP files (`where` names it in errors)."""
    has_gold = spec.output_field in data.column_names
    golds: list[dict] = []
    judged: list[dict] = []
    seen: dict[str, int] = {}

    def questions() -> Iterator[dict]:
        for index, record in enumerate(data):
            mapped = map_record(record, index, spec)
            question = validate_question(where, mapped, index, task)
            if question.id in seen:
                raise LaMPDataError(
                    where, f"duplicate id (first at record {seen[question.id]})", index, question.id, "id"
                )
            seen[question.id] = index
            if has_gold:
                gold = {"id": question.id, "output": record.get(spec.output_field)}
                golds.append(dict(zip(("id", "output"), validate_gold(where, gold, index, task), strict=True)))
            if spec.judge_fields:
                judged.append(_judge_record(where, record, index, question.id, spec))
            yield {"id": question.id, "input": question.input, "profile": question.profile, "user_id": question.user_id}

    _json_array(folder / f"{split}_questions.json", questions())
    if not seen:
        raise LaMPDataError(where, "the split is empty: nothing to train on, score or predict")
    if has_gold:
        _json_array(
            folder / f"{split}_outputs.json", iter(golds), f'{{"task": {json.dumps(task.name)}, "golds": [', "]}"
        )
    if spec.judge_fields:
        _json_array(folder / f"{split}_judge.json", iter(judged))


def materialize(source: DatasetSource | dict | None, task: Task, cache_dir: str | Path) -> Path:
    """The LaMP data folder of a dataset source, written once per dataset identity.

    Returns:
        A folder with ``<split>_questions.json`` (+ ``_outputs.json`` where the split has golds,
        + ``_judge.json`` for LaMP-QA) for each of train / dev / test the dataset has.

    Raises:
        MissingDataError: the dataset is not there (one line saying what to fetch).
        LaMPDataError: a malformed record (dataset and split, record, field); nothing is kept.
    """
    source, spec = resolve(source, task)
    data = load(source)
    splits = fingerprints(data, spec, source)
    key = {
        "format": FORMAT,
        "task_spec": task.fingerprint,
        "mapping": asdict(spec),
        "source": asdict(source),
        "splits": splits,
    }
    dest = Path(cache_dir) / task.cache_name / "source" / stable_hash(key)

    def build(folder: Path) -> None:
        for split, entry in splits.items():
            hub = entry["split"]
            _write_split(folder, task, split, data[hub], spec, f"{_label(source)} split {hub}")
        (folder / "source.json").write_text(json.dumps(key, indent=1))

    return atomic_folder(dest, build)


def download_help(task: Task) -> str:
    """What to fetch for a LongLaMP / LaMP-QA task and where to put it (one paragraph)."""
    source, _ = resolve(None, task)
    return (
        f"{task.name} is read with `datasets` from the Hugging Face dataset {source.dataset} (config "
        f"{source.name}): with network, `lamp-pl download --task {task.name} --dest DIR` saves a local copy to "
        f"DIR/{source.name} (or let training fill the Hugging Face cache); offline (HF_DATASETS_OFFLINE=1), "
        f"set data.source.dataset to DIR, a folder written by save_to_disk holding {source.name}/."
    )


def save_copy(task: Task, dest: str | Path) -> Path:
    """Load a task's published dataset (hub or Hugging Face cache) and save it to ``<dest>/<config>``.

    Raises:
        MissingDataError: not reachable; the message says what to fetch and where to put it.
    """
    source, _ = resolve(None, task)
    folder = Path(dest) / str(source.name)
    if _is_saved(folder):
        return folder
    try:
        data = load(source)
    except MissingDataError as error:
        raise MissingDataError(f"{error}. {download_help(task)}") from None
    data.save_to_disk(str(folder))
    return folder


__all__ = [
    "DatasetSource",
    "download_help",
    "fingerprints",
    "load",
    "map_record",
    "materialize",
    "resolve",
    "save_copy",
]
