"""Agreement with the synthetic data's planted signal (`lamp_pl.data.synthetic`).

A synthetic user's item carries the label of the user's mood for the item's topic, and a
question's gold is the mood for its own topic; so a profile item is *planted relevant* to a
question when its output field equals the gold output (the item that tells the generator the
answer). Both checks below use only that, so they also run on real data (as label agreement).
"""

from __future__ import annotations

import json
from pathlib import Path

from lamp_pl.data.lamp import load_split


def _helpful(task, item: dict, gold: str | None) -> bool:
    return str(item[task.output_field]).strip() == str(gold).strip()


def planted_hit_rate(datamodule, split: str = "test") -> dict:
    """How often the retriever's top-1 item is planted relevant, among questions whose cached
    candidates hold at least one relevant item (others cannot be hit by any ranking)."""
    dm, task = datamodule, datamodule.task
    questions = load_split(dm.data_dir, task, split)
    retrieved = dm.view(split).top(1).retrieved()
    profile_has = [any(_helpful(task, item, q.output) for item in q.profile) for q in questions]
    hits = [
        _helpful(task, r.items[0], q.output) for q, r, ok in zip(questions, retrieved, profile_has) if ok and r.items
    ]
    return {"questions": len(hits), "top1_relevant": sum(hits) / max(1, len(hits))}


def attribution_planted_rate(attribution: str | Path | dict, datamodule) -> dict:
    """How often the item with the largest leave-one-out delta is planted relevant, among
    questions whose prompt mixes relevant and irrelevant items, against chance (the mean share
    of relevant items in those prompts)."""
    document = json.loads(Path(attribution).read_text()) if not isinstance(attribution, dict) else attribution
    task = datamodule.task
    questions = {q.id: q for q in load_split(datamodule.data_dir, task, document["split"])}
    items_by_id = {}
    for q in questions.values():
        items_by_id.update({(q.id, str(item["id"])): item for item in q.profile})
    first, chance, by_attention = [], [], []
    for record in document["questions"]:
        gold = questions[record["id"]].output
        flags = [_helpful(task, items_by_id[(record["id"], item["id"])], gold) for item in record["items"]]
        if not any(flags) or all(flags):
            continue
        best = max(range(len(flags)), key=lambda i: record["items"][i]["loo_delta"])
        attended = max(range(len(flags)), key=lambda i: record["items"][i]["attention_share"])
        first.append(flags[best])
        by_attention.append(flags[attended])
        chance.append(sum(flags) / len(flags))
    n = max(1, len(first))
    return {
        "questions": len(first),
        "loo_first_relevant": sum(first) / n,
        "attention_first_relevant": sum(by_attention) / n,
        "chance": sum(chance) / n,
    }


__all__ = ["attribution_planted_rate", "planted_hit_rate"]
