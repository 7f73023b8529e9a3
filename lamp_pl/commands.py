"""`lamp-pl index` and `lamp-pl inspect`: build the data caches of a config, and show one prompt.

Both read only the `data:` section of a LightningCLI config, so no model weights are loaded.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
import tempfile
import time
from pathlib import Path

import yaml

from lamp_pl.cache import full_checks
from lamp_pl.data.stages import check_splits_present, stage_splits
from lamp_pl.datamodule import LaMPDataModule


def _merge(base: dict, update: dict) -> dict:
    for key, value in update.items():
        base[key] = _merge(base.get(key, {}), value) if isinstance(value, dict) and isinstance(base.get(key), dict) \
            else value
    return base


def datamodule_from_config(configs: list[str], overrides: list[str] | None = None) -> LaMPDataModule:
    """Instantiate the LaMPDataModule of one or more config files (later files win), as the CLI
    would, with `--data.x value` style overrides."""
    from jsonargparse import ActionConfigFile, ArgumentParser

    merged: dict = {}
    for path in configs:
        _merge(merged, yaml.safe_load(Path(path).read_text()) or {})
    parser = ArgumentParser(prog="lamp-pl", exit_on_error=False)
    parser.add_argument("--config", action=ActionConfigFile)
    parser.add_class_arguments(LaMPDataModule, "data")
    # Only the data section is parsed, through a config file so overrides apply on top of it.
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as data_only:
        yaml.safe_dump({"data": merged.get("data", {})}, data_only)
        data_only.flush()
        cfg = parser.parse_args(["--config", data_only.name, *(overrides or [])])
    return parser.instantiate_classes(cfg).data


def _parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lamp-pl {name}")
    parser.add_argument("--config", action="append", required=True, help="LightningCLI config (repeatable)")
    return parser


def index_main(argv: list[str] | None = None) -> int:
    """Build (or verify) every cache of the config's data section; print a JSON summary."""
    parser = _parser("index")
    parser.add_argument("--verify", action="store_true",
                        help="checksum every cache file in full (damaged ones are rebuilt)")
    args, overrides = parser.parse_known_args(argv)
    datamodule = datamodule_from_config(args.config, overrides)
    start = time.perf_counter()
    datamodule.write_synthetic_data()
    check_splits_present(datamodule.data_dir, datamodule.task, stage_splits(datamodule))
    with full_checks() if args.verify else contextlib.nullcontext():
        summary = datamodule.build(datamodule.splits_for(None)) or {}
    summary["verified"] = args.verify
    summary.setdefault("seconds", round(time.perf_counter() - start, 3))
    summary.update(task=datamodule.task.name, retriever=datamodule.retrieval.retriever,
                   cache_dir=str(datamodule.cache_dir))
    print(json.dumps(summary, indent=2))
    return 0


def inspect_main(argv: list[str] | None = None) -> int:
    """Print what the model will read for one question: query, retrieved items, final prompt."""
    from lamp_pl.data.lamp import load_split
    from lamp_pl.retrieval import load_retrieved

    parser = _parser("inspect")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--id", required=True, help="question id")
    args, overrides = parser.parse_known_args(argv)
    dm = datamodule_from_config(args.config, overrides)
    dm.write_synthetic_data()
    dm.build([args.split])
    questions = load_split(dm.data_dir, dm.task, args.split)
    index = next((i for i, q in enumerate(questions) if q.id == args.id), None)
    if index is None:
        print(f"lamp-pl inspect: error: no question {args.id!r} in split {args.split!r}", file=sys.stderr)
        return 1
    question = questions[index]
    retrieved = load_retrieved(dm.task, dm.data_dir, args.split, dm.retrieval, dm.cache_dir, dm.k, dm.offset)[index] \
        if dm.uses_retrieval else None
    prompt = dm.prompts(args.split)[index]
    print(json.dumps({
        "id": question.id, "user": question.user, "retriever": dm.retrieval.retriever, "k": dm.k,
        "query": dm.task.query(question.input),
        "retrieved": [{"id": item["id"], "score": score, "text": dm.task.item_text(item)}
                      for item, score in zip(retrieved.items, retrieved.scores)] if retrieved else [],
        "prompt": prompt, "prompt_tokens": len(dm.tokenizer(prompt, truncation=True,
                                                           max_length=dm.max_input_length)["input_ids"]),
        "gold": question.output,
    }, indent=2))
    return 0


main = index_main
