"""`fit_users`: one LoRA adapter per user, trained on that user's own profile items.

Users are sharded by `shard` ("i/n", e.g. one per machine) and, inside a shard, over the ranks
of a `torch.distributed` job (RANK / WORLD_SIZE in the environment, as torchrun sets them). Each
adapter is written atomically as soon as it is trained, so a killed run loses at most the user in
progress and a rerun skips every user whose file exists.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

from lamp_pl.adapters.base import AdapterJob, lora_state, set_lora_state
from lamp_pl.adapters.examples import user_examples
from lamp_pl.adapters.store import adapter_path, is_finished, save_adapter, write_settings
from lamp_pl.adapters.two_stage import init_settings, load_task_adapter
from lamp_pl.cache import stable_hash, write_text_atomic
from lamp_pl.errors import ConfigError


def parse_shard(shard: str) -> tuple[int, int]:
    """ "i/n" -> (i, n), checked."""
    try:
        index, count = (int(part) for part in shard.split("/"))
    except ValueError:
        raise ConfigError(f"shard must look like 'i/n', got {shard!r}") from None
    if not 0 <= index < count:
        raise ConfigError(f"shard {shard!r}: need 0 <= i < n")
    return index, count


def my_users(users: list[str], shard: str) -> list[str]:
    """The users this process trains: shard i of n, then this rank's share of it."""
    index, count = parse_shard(shard)
    rank, world = int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    return [u for j, u in enumerate(sorted(users)) if j % (count * world) == index * world + rank]


def fit_users(
    job: AdapterJob,
    out: str | Path,
    *,
    split: str | None = None,
    shard: str = "0/1",
    min_profile: int = 4,
    init_adapter: str | Path | None = None,
) -> dict:
    """Train one LoRA adapter per user of a split (default: the data section's `test_split`) over
    the job's frozen base (`lamp-pl fit-users`, `lamp_pl.cli.adapters.fit_users`, documents each
    argument).

    `training.seed` seeds the LoRA initialisation and, with each user's id, that user's batch
    order; `init_adapter` is a task adapter (`fit_task_adapter`) every user starts from.

    Returns:
        Summary: users trained / skipped (finished earlier) / too small, bytes per adapter, seconds.
    """
    start = time.perf_counter()
    datamodule = job.data
    questions = job.questions(split or datamodule.test_split)
    examples = user_examples(datamodule.task, questions)
    settings = job.settings()
    if init_adapter is not None:
        settings = init_settings(settings, init_adapter)
    write_settings(out, settings)
    base, peft_model = job.slot(settings)
    if init_adapter is not None:
        set_lora_state(peft_model, load_task_adapter(init_adapter, settings))
    initial = lora_state(peft_model)
    trained, skipped, small, sizes = [], [], [], {}
    for user in my_users(list(examples), shard):
        if len(examples[user]) < min_profile:
            small.append(user)
            continue
        path = adapter_path(out, user)
        if is_finished(out, user):
            skipped.append(user)
            sizes[user] = path.stat().st_size
            continue
        set_lora_state(peft_model, initial)
        job.train(peft_model, base.tokenizer, examples[user], int(stable_hash([job.training.seed, user], 8), 16))
        sizes[user] = save_adapter(out, user, lora_state(peft_model))
        trained.append(user)
    write_text_atomic(Path(out) / "user_data.json", json.dumps({u: len(p) for u, p in sorted(examples.items())}))
    return {
        "out": str(out),
        "users": len(examples),
        "user_data": str(Path(out) / "user_data.json"),
        "trained": len(trained),
        "skipped_finished": len(skipped),
        "too_small": len(small),
        "min_profile": min_profile,
        "bytes_per_adapter": max(sizes.values(), default=0),
        "bytes_total": sum(sizes.values()),
        "seconds": round(time.perf_counter() - start, 2),
    }
