"""Synthetic datasets in LongLaMP's and LaMP-QA's published schemas, saved with `datasets`.

`write_longlamp` writes a ``save_to_disk`` folder shaped like ``LongLaMP/LongLaMP``'s
``abstract_generation_*`` or ``product_review_*`` configs (splits ``train``, ``val``, ``test``);
`write_lamp_qa` one shaped like an ``alireza7/LaMP-QA`` category (``train``, ``validation``,
``test``). A ``data.source`` of a config points at them like at a local copy of the hub dataset.

The personalization signal is planted: each user has a few signature words that every text they
write carries, next to the words of its topic. A model that sees one of the user's profile items
can copy the signature; without the profile it can only guess, so ROUGE drops at k = 0.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

WORDS = [f"{a}{b}" for a in ("ka", "lo", "mi", "nu", "pe", "ro", "su", "ti", "va", "ze") for b in "aeiouy"]
SIGNATURES = [f"{a}{b}x" for a in ("bra", "cle", "dro", "fla", "gri", "plu", "sno", "tre") for b in "aeiou"]
STYLES = [SIGNATURES[i : i + 3] for i in range(0, len(SIGNATURES) - 2, 3)]
"""Fixed signatures of three words each (13), for users who write in one of a few styles."""


def _texts(rng: random.Random, signature: list[str], words: int, filler: bool = True) -> tuple[list[str], str]:
    """A topic (4 words) and a text about it in the user's style, about `words` words long: topic
    and signature words in turn, each pair followed by a random word with `filler`."""
    topic = rng.sample(WORDS, 4)
    body: list[str] = []
    width = 3 if filler else 2
    while len(body) < words:
        step = len(body) // width
        body += [topic[step % 4], signature[step % len(signature)]] + ([rng.choice(WORDS)] if filler else [])
    sentences = [" ".join(body[i : i + 9]) + "." for i in range(0, words, 9)]
    return topic, "\n".join(sentences)


def _longlamp_record(
    rng: random.Random, family: str, user: str, signature: list[str], items: int, words: int, filler: bool = True
) -> dict:
    profile = []
    for number in range(items):
        topic, text = _texts(rng, signature, words, filler)
        if family == "abstract_generation":
            profile.append(
                {"abstract": text, "id": f"{user}-{number}", "title": " ".join(topic), "year": 2000 + number}
            )
        else:
            profile.append(
                {
                    "description": " ".join(topic),
                    "overall": float(rng.randint(1, 5)),
                    "reviewText": text,
                    "summary": " ".join(topic[:2]),
                }
            )
    topic, target = _texts(rng, signature, words, filler)
    if family == "abstract_generation":
        text_in = f'Generate an abstract for the title "{" ".join(topic)}" using the following items: 1. {topic[0]} 2. {topic[1]}'
        return {"name": user, "input": text_in, "output": target, "profile": profile}
    text_in = (
        'Generate the review text written by a reviewer who has a given an overall rating of "4.0" for a '
        f'product with description "{" ".join(topic)}". The summary of the review text is "{" ".join(topic[:2])}".'
    )
    return {"reviewerId": user, "input": text_in, "output": target, "profile": profile}


def write_longlamp(
    dest: str | Path,
    config: str = "abstract_generation_user",
    users: int = 60,
    profile_size: int = 6,
    words: int = 18,
    seed: int = 0,
    eval_users: int | None = None,
    filler: bool = True,
    styles: int = 0,
) -> Path:
    """Write a LongLaMP-shaped ``DatasetDict`` to ``<dest>/<config>`` with ``save_to_disk``; returns
    that folder. One record per user (as LongLaMP's user-based splits); val and test hold
    `eval_users` users each (default: 20 % of `users`), train the rest. Texts alternate topic and
    signature words, with a random word after each pair when `filler` is set. A user's signature
    is 3 words drawn from `SIGNATURES`, or, with `styles`, one of the first `styles` of `STYLES`
    (users who share a style share its words)."""
    import datasets

    family = config.rsplit("_", 1)[0]
    if family not in ("abstract_generation", "product_review"):
        raise ValueError(f"config {config!r}: the synthetic writer knows abstract_generation_* and product_review_*")
    rng = random.Random(seed)
    records = []
    for number in range(users):
        signature = rng.choice(STYLES[:styles]) if styles else rng.sample(SIGNATURES, 3)
        records.append(_longlamp_record(rng, family, f"user{number}", signature, profile_size, words, filler))
    held = int(users * 0.2) if eval_users is None else eval_users
    if not 0 < held < users / 2:
        raise ValueError(f"eval_users={held}: val and test need at least one user each and train the most")
    cut = [users - 2 * held, users - held]
    parts = {"train": records[: cut[0]], "val": records[cut[0] : cut[1]], "test": records[cut[1] :]}
    folder = Path(dest) / config
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in parts.items()}).save_to_disk(str(folder))
    return folder


def write_lamp_qa(
    dest: str | Path, category: str = "Art_and_Entertainment", users: int = 30, profile_size: int = 5, seed: int = 0
) -> Path:
    """Write a LaMP-QA-shaped ``DatasetDict`` to ``<dest>/<category>``: train records carry a
    reference answer (``expected_output``), validation and test are for the judge."""
    import datasets

    rng = random.Random(seed)
    parts: dict[str, list[dict]] = {"train": [], "validation": [], "test": []}
    for number in range(users):
        signature = rng.sample(SIGNATURES, 3)
        topic, narrative = _texts(rng, signature, 18)
        split = "train" if number < users * 0.6 else "validation" if number < users * 0.8 else "test"
        record = {
            "id": f"q{number}",
            "question": f"How should I think about {' and '.join(topic[:2])}?",
            "narrative": narrative,
            "rubric_aspects": [
                {"aspect": f"covers {word}", "reason": f"the user cares about {word}", "evidence": narrative[:40]}
                for word in signature[:2]
            ],
            "profile": [
                {"id": f"q{number}-p{i}", "text": _texts(rng, signature, 12)[1].replace("\n", " ")}
                for i in range(profile_size)
            ],
        }
        if split == "train":
            record["expected_output"] = _texts(rng, signature, 18)[1]
        parts[split].append(record)
    folder = Path(dest) / category
    datasets.DatasetDict({k: datasets.Dataset.from_list(v) for k, v in parts.items()}).save_to_disk(str(folder))
    return folder


def prompt_words(task_name: str) -> str:
    """The fixed words of a task's prompts (its item template and layout, placeholders left out),
    so a tokenizer trained on the data also knows them as words rather than letters."""
    from lamp_pl.tasks import get_task

    task = get_task(task_name)
    return re.sub(r"\{\w+\}", " ", f"{task.item_template} {task.layout} {task.budget_suffix or ''}")


def write_tokenizer(dataset_folder: str | Path, dest: str | Path, vocab_size: int = 600, task: str = "") -> Path:
    """A T5-style tokenizer trained on a synthetic dataset's texts (and the fixed words of `task`'s
    prompts, when given); the demo's generator reads it."""
    import datasets

    from lamp_pl.demo.tokenizers import train_t5_tokenizer

    data = datasets.load_from_disk(str(dataset_folder))
    corpus = [f"{r['input']} {r['output']}" for r in data["train"]]
    corpus += [str(v) for r in data["train"] for item in r["profile"] for k, v in item.items() if k != "id"]
    corpus += [prompt_words(task)] * 20 if task else []  # frequent enough to be kept as pieces
    train_t5_tokenizer(corpus, vocab_size, bpe=True).save_pretrained(str(dest))
    return Path(dest)


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
    `demo_longlamp` names. Next: `lamp-pl fit --config demo_longlamp`
    (with `--config demo_longlamp_k0` after it: the same without profile items).

    Args:
        dest: Root folder of the demo's files.
        config: LongLaMP subset whose schema the data follows.
        users: Number of synthetic users, one record each.
        eval_users: Users in val and in test each; train holds the rest.
        styles: Number of writing styles the users share.
        seed: Seed of the synthetic data.
    """
    folder = write_longlamp(
        dest, config, users, words=12, seed=seed, eval_users=eval_users, filler=False, styles=styles
    )
    tokenizer = write_tokenizer(folder, Path(dest) / "tokenizer", task=f"LongLaMP_{config}")
    return {"dataset": str(folder), "tokenizer": str(tokenizer)}
