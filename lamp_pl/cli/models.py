"""`lamp-pl export`: a checkpoint as a plain Hugging Face folder (see `lamp_pl.export`)."""

from __future__ import annotations

import argparse
from pathlib import Path

from lamp_pl.export import export


def export_main(argv: list[str] | None = None) -> int:
    """`lamp-pl export --ckpt_path CKPT --out DIR [--config run.yaml] [--adapter-only]`."""
    parser = argparse.ArgumentParser(prog="lamp-pl export", description=(export.__doc__ or "").splitlines()[0])
    parser.add_argument("--config", default=None, help="the run's config (default: its saved config.yaml)")
    parser.add_argument("--ckpt_path", required=True, help="checkpoint file")
    parser.add_argument("--out", required=True, type=Path, help="destination folder")
    parser.add_argument("--adapter-only", action="store_true", help="keep the LoRA adapter unmerged")
    args = parser.parse_args(argv)
    print(f"lamp_pl: exported to {export(args.config, args.ckpt_path, args.out, args.adapter_only)}")
    return 0
