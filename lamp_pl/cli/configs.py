"""`lamp-pl configs [NAME]`: list the configs shipped with the package, or print one.

Every listed name works as `--config NAME` (and a recipe's as `lamp-pl grid --recipe NAME`);
`lamp-pl configs demo > my_demo.yaml` gives a copy to edit, then `--config my_demo.yaml`.
"""

from __future__ import annotations

import argparse
import sys

from lamp_pl.shipped import describe, find_shipped, shipped_names, shipped_root, unknown


def parser() -> argparse.ArgumentParser:
    """The command's options."""
    p = argparse.ArgumentParser(
        prog="lamp-pl configs",
        description="List the shipped configs (names for --config and --recipe), or print one to copy and edit.",
    )
    p.add_argument("name", nargs="?", help="a shipped config to print, e.g. demo, task/LaMP_4, recipes/demo")
    p.add_argument("--path", action="store_true", help="print the file's path instead of its text")
    return p


def listing() -> str:
    """One line per shipped config: its name and the first line of its header comment."""
    names = shipped_names()
    width = max(map(len, names))
    lines = []
    for name in names:
        path = find_shipped(name)
        lines.append(f"{name.ljust(width)}  {describe(path) if path else ''}".rstrip())
    lines.append(f"\n({shipped_root()}; `lamp-pl configs NAME` prints one, `--config NAME` uses it)")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """List the shipped configs, or print one (to copy and edit)."""
    args = parser().parse_args(argv)
    if args.name is None:
        print(listing())
        return 0
    path = find_shipped(args.name) or find_shipped(args.name, "recipes")
    if path is None:
        raise unknown(args.name, "")
    sys.stdout.write(str(path) + "\n" if args.path else path.read_text(encoding="utf-8"))
    return 0
