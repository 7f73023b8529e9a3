"""The offline demo's model folders (`lamp-pl demo`, `lamp_pl.cli.demo`): links written atomically."""

from __future__ import annotations

import os
from pathlib import Path


def link_folder(target: Path, link: Path) -> Path:
    """Point `link` at `target` atomically (a symlink replaced in one rename)."""
    link.parent.mkdir(parents=True, exist_ok=True)
    if link.is_symlink() and link.resolve() == target.resolve():
        return link
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    tmp.symlink_to(target.resolve(), target_is_directory=True)
    os.replace(tmp, link)
    return link


__all__ = ["link_folder"]
