"""Argparse shims of the RSPG commands (`lamp-pl score-retrievers`, `fit-selector`, `select`);
the typed functions they call (`score_retrievers`, `fit_selector`, `select_retrievers`) are the API."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _pool(text: str | None) -> dict | None:
    """A pool from JSON text or a JSON file: name -> `RetrievalConfig` overrides."""
    if text is None:
        return None
    return json.loads(Path(text).read_text()) if Path(text).is_file() else json.loads(text)


def score_retrievers_main(argv: list[str] | None = None) -> int:
    """`lamp-pl score-retrievers --config C --ckpt_path G [--pool JSON] [--split train]`."""
    from lamp_pl.commands import datamodule_from_config
    from lamp_pl.learned.utilities import score_retrievers

    parser = argparse.ArgumentParser(prog="lamp-pl score-retrievers")
    parser.add_argument("--config", action="append", required=True)
    parser.add_argument("--ckpt_path", required=True)
    parser.add_argument("--pool", default=None, help="JSON (or a JSON file): name -> retrieval overrides")
    parser.add_argument("--split", default="train")
    parser.add_argument("--batch_size", type=int, default=32)
    args, overrides = parser.parse_known_args(argv)
    dm = datamodule_from_config(args.config, overrides)
    print(score_retrievers(dm, args.ckpt_path, _pool(args.pool), args.split, batch_size=args.batch_size))
    return 0


def fit_selector_main(argv: list[str] | None = None) -> int:
    """`lamp-pl fit-selector --train utilities.jsonl --encoder NAME --out_dir DIR [--mode pre|post]`."""
    from lamp_pl.learned.selector import fit_selector
    from lamp_pl.learned.utilities import load_retriever_utilities

    parser = argparse.ArgumentParser(prog="lamp-pl fit-selector")
    parser.add_argument("--train", required=True)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--mode", choices=["pre", "post"], default="pre")
    parser.add_argument("--metric", choices=["metric", "log_likelihood"], default="metric")
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-4)
    args = parser.parse_args(argv)
    records = load_retriever_utilities(args.train)
    kwargs = {"mode": args.mode, "metric": args.metric, "temperature": args.temperature, "lr": args.lr}
    fit_selector(records, args.encoder, args.out_dir, max_epochs=args.max_epochs, **kwargs)
    print(Path(args.out_dir) / "selector.ckpt")
    return 0


def select_main(argv: list[str] | None = None) -> int:
    """`lamp-pl select --config C --selector DIR/selector.ckpt --pool JSON --out choices.json [--split test]`:
    the choices file of ``retrieval.retriever: selected`` (``retrieval.selector: choices.json``)."""
    from lamp_pl.commands import datamodule_from_config
    from lamp_pl.learned.selector import SelectorModule, select_retrievers

    parser = argparse.ArgumentParser(prog="lamp-pl select")
    parser.add_argument("--config", action="append", required=True)
    parser.add_argument("--selector", required=True)
    parser.add_argument("--pool", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--split", default="test")
    args, overrides = parser.parse_known_args(argv)
    dm = datamodule_from_config(args.config, overrides)
    module = SelectorModule.load_from_checkpoint(args.selector, map_location="cpu")
    print(select_retrievers(module, dm, _pool(args.pool) or {}, args.split, args.out))
    return 0


main = score_retrievers_main
