"""Argparse shims of `lamp-pl fit-users` and `lamp-pl test-users` (the typed functions do the work)."""

from __future__ import annotations

import argparse
import json

from lamp_pl.adapters.evaluate import test_users
from lamp_pl.adapters.fit import fit_users


def _parser(name: str) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=f"lamp-pl {name}")
    parser.add_argument("--config", action="append", required=True, help="LightningCLI config (repeatable)")
    parser.add_argument("--ckpt_path", default=None, help="Lightning checkpoint of the shared base model")
    parser.add_argument("--split", default=None, help="default: the config's test_split")
    return parser


def fit_users_main(argv: list[str] | None = None) -> int:
    """`lamp-pl fit-users --config C --out DIR [--shard i/n]`: one LoRA adapter per user."""
    parser = _parser("fit-users")
    parser.add_argument("--out", required=True, help="adapter folder")
    parser.add_argument("--shard", default="0/1")
    parser.add_argument("--min_profile", type=int, default=4)
    parser.add_argument("--epochs", type=int, default=5)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--batch_size", type=int, default=8)
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--alpha", type=int, default=16)
    parser.add_argument("--init_adapter", default=None, help="task adapter to start from (two-stage PEFT)")
    args, overrides = parser.parse_known_args(argv)
    summary = fit_users(
        args.config,
        args.out,
        args.ckpt_path,
        args.split,
        args.shard,
        args.min_profile,
        args.epochs,
        args.lr,
        args.batch_size,
        args.r,
        args.alpha,
        overrides=overrides,
        init_adapter=args.init_adapter,
    )
    print(json.dumps(summary, indent=2))
    return 0


def fit_task_adapter_main(argv: list[str] | None = None) -> int:
    """`lamp-pl fit-task-adapter --config C --out DIR`: one LoRA on all users' training questions."""
    from lamp_pl.adapters.two_stage import fit_task_adapter

    parser = _parser("fit-task-adapter")
    parser.add_argument("--out", required=True, help="folder of the task adapter")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--lr", type=float, default=1e-3)
    parser.add_argument("--r", type=int, default=8)
    parser.add_argument("--alpha", type=int, default=16)
    args, overrides = parser.parse_known_args(argv)
    kwargs = {"epochs": args.epochs, "lr": args.lr, "r": args.r, "alpha": args.alpha, "overrides": overrides}
    print(json.dumps(fit_task_adapter(args.config, args.out, args.ckpt_path, args.split, **kwargs), indent=2))
    return 0


def test_users_main(argv: list[str] | None = None) -> int:
    """`lamp-pl test-users --config C --user_adapters DIR`: each question with its user's adapter."""
    parser = _parser("test-users")
    parser.add_argument("--user_adapters", required=True)
    parser.add_argument("--out", default=None)
    args, overrides = parser.parse_known_args(argv)
    summary = test_users(args.config, args.user_adapters, args.ckpt_path, args.out, args.split, overrides=overrides)
    print(json.dumps(summary, indent=2))
    return 0


test_users_main.__test__ = False  # type: ignore[attr-defined]
main = fit_users_main
