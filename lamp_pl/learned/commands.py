"""Argparse shims of the learned-retrieval commands (`lamp-pl score-items`, `attribute`,
`fit-retriever`, `ropg-kd`); the typed functions they call are the API."""

from __future__ import annotations

import argparse
import json


def _data_parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lamp-pl {name}")
    parser.add_argument("--config", action="append", required=True, help="LightningCLI config (repeatable)")
    parser.add_argument("--ckpt_path", required=True, help="the generator's Lightning checkpoint")
    parser.add_argument("--batch_size", type=int, default=32)
    return parser


def score_items_main(argv: list[str] | None = None) -> int:
    """`lamp-pl score-items --config ... --ckpt_path ... --candidates 20 [--split train]`."""
    from lamp_pl.commands import datamodule_from_config
    from lamp_pl.learned.scoring import score_items

    parser = _data_parser("score-items")
    parser.add_argument("--candidates", type=int, default=20)
    parser.add_argument("--split", default="train")
    parser.add_argument("--with_metric", action="store_true")
    args, overrides = parser.parse_known_args(argv)
    dm = datamodule_from_config(args.config, overrides)
    print(
        score_items(
            dm, args.ckpt_path, args.candidates, args.split, batch_size=args.batch_size, with_metric=args.with_metric
        )
    )
    return 0


def attribute_main(argv: list[str] | None = None) -> int:
    """`lamp-pl attribute --config ... --ckpt_path ... [--split dev] [--out file.json]`."""
    from lamp_pl.commands import datamodule_from_config
    from lamp_pl.learned.attribution import attribute

    parser = _data_parser("attribute")
    parser.add_argument("--split", default="dev")
    parser.add_argument("--out", default=None)
    args, overrides = parser.parse_known_args(argv)
    dm = datamodule_from_config(args.config, overrides)
    out = attribute(dm, args.ckpt_path, args.split, args.out, batch_size=args.batch_size)
    print(json.dumps({"file": str(out), "summary": json.loads(out.read_text())["summary"]}, indent=1))
    return 0


def fit_retriever_main(argv: list[str] | None = None) -> int:
    """`lamp-pl fit-retriever --train utilities.jsonl --encoder NAME --out_dir DIR [--val ...]`."""
    from lamp_pl.learned.distill import fit_retriever

    parser = argparse.ArgumentParser(prog="lamp-pl fit-retriever")
    parser.add_argument("--train", required=True)
    parser.add_argument("--val", default=None)
    parser.add_argument("--encoder", required=True)
    parser.add_argument("--out_dir", required=True)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--max_epochs", type=int, default=3)
    parser.add_argument("--lr", type=float, default=1e-5)
    parser.add_argument("--temperature", type=float, default=1.0)
    parser.add_argument("--utility_temperature", type=float, default=1.0)
    args = parser.parse_args(argv)
    print(
        fit_retriever(
            args.train,
            args.encoder,
            args.out_dir,
            val_utilities=args.val,
            batch_size=args.batch_size,
            max_epochs=args.max_epochs,
            lr=args.lr,
            temperature=args.temperature,
            utility_temperature=args.utility_temperature,
        )
    )
    return 0


def ropg_kd_main(argv: list[str] | None = None) -> int:
    """`lamp-pl ropg-kd configs/LaMP_2/ropg_kd.yml`: the whole recipe and its table."""
    from lamp_pl.learned.recipe import ropg_kd

    parser = argparse.ArgumentParser(prog="lamp-pl ropg-kd")
    parser.add_argument("recipe")
    ropg_kd(parser.parse_args(argv).recipe)
    return 0


def ropg_main(argv: list[str] | None = None) -> int:
    """`lamp-pl ropg configs/LaMP_2/ropg_kd.yml --method kd|rl`: the recipe with either trainer."""
    import yaml

    from lamp_pl.learned.recipe import ropg_kd

    parser = argparse.ArgumentParser(prog="lamp-pl ropg")
    parser.add_argument("recipe")
    parser.add_argument("--method", choices=["kd", "rl"], default="kd")
    parser.add_argument("--workdir", default=None, help="default: the recipe's workdir plus _<method> for rl")
    args = parser.parse_args(argv)
    with open(args.recipe) as stream:
        spec = yaml.safe_load(stream)
    default = spec.get("workdir", "runs/ropg_kd") + ("_rl" if args.method == "rl" else "")
    ropg_kd({**spec, "method": args.method, "workdir": args.workdir or default})
    return 0


main = score_items_main
