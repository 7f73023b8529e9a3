"""No silent no-ops in the user-profile study: options that cannot change a prompt are errors.

`check_study_options` is called when a `LaMPDataModule` is built; `effective_settings` is what
`lamp-pl grid` uses to run grid points that would give the same prompts only once.
"""

from __future__ import annotations

from typing import Any

from lamp_pl.errors import ConfigError
from lamp_pl.tasks import Task


def _no_items(k: float, retriever: str) -> bool:
    return k == 0 or retriever == "none"


def _whole_k(k: float) -> int | None:
    """`k` as an item count, or None for a fraction of the profile (its count varies by user)."""
    return int(k) if k >= 1 or k == 0 else None


def check_study_options(spec: Task, k: float, offset: int, retrieval: Any, prompt: Any) -> None:
    """Raise `ValueError` for a study option that cannot change any prompt.

    Args:
        spec: The task (resolved: `LaMPData` resolves it once).
        k: Items per prompt (an integer, or a fraction of the profile in (0, 1)).
        offset: Top-ranked items skipped.
        retrieval: The `RetrievalConfig` (its `retriever` and `k_max`).
        prompt: The `PromptOptions` (its `order` and `ablation`).

    Raises:
        ValueError: Naming the option and why it is a no-op: an order other than ``start``, or
            ``ablation='decouple'``, with fewer than two items; any order, ablation or offset
            with no items (k = 0 or retriever ``none``); ``decouple`` or the ``mixed`` retriever on
            a task whose output part is the truncated free text (e.g. LaMP-7); ``offset + k``
            beyond ``k_max``.
    """
    retriever, k_max = retrieval.retriever, retrieval.k_max
    if _no_items(k, retriever):
        why = f"k={k} and retriever={retriever!r} put no profile items in the prompt"
        for name, value, neutral in (
            ("prompt.order", prompt.order, "start"),
            ("prompt.ablation", prompt.ablation, "both"),
            ("offset", offset, 0),
        ):
            if value != neutral:
                raise ConfigError(f"{name}={value!r} cannot change the prompt: {why}")
        return
    count = _whole_k(k)
    if count == 1:  # one item: nothing to reorder, no other item to take an output from
        if prompt.order != "start":
            raise ConfigError(f"prompt.order={prompt.order!r} cannot change the prompt: k={k} gives one item")
        if prompt.ablation == "decouple":
            raise ConfigError(
                f"prompt.ablation='decouple' cannot change the prompt: k={k} gives one item, "
                "with no other item's output to pair it with"
            )
    uses = [
        name
        for name, on in (
            ("prompt.ablation='decouple'", prompt.ablation == "decouple"),
            ("retrieval.retriever='mixed'", retriever == "mixed"),
        )
        if on
    ]
    if uses and spec.output_field is not None and spec.output_field == spec.free_field:
        raise ConfigError(
            f"{uses[0]} cannot change the prompt on {spec.name}: its items' output part "
            f"({spec.output_field!r}) is the free text itself, so there is no separate output to swap"
        )
    if k_max != -1 and offset > 0:
        last = offset + (count if count is not None else 1)
        if last > k_max:
            raise ConfigError(
                f"offset={offset} with k={k} reaches rank {last}, beyond retrieval.k_max={k_max} "
                "(the ranked lists are cached up to k_max): raise k_max or lower the offset"
            )


def effective_settings(point: dict[str, str], configured: dict[str, str]) -> dict[str, str]:
    """The grid axes' values that actually shape the prompts of grid `point`.

    `configured` holds the values the configs give (for axes not in the point). With no items
    (k = 0 or retriever none) retriever, k, order and ablation are moot and become none, 0, start,
    both; with one item (k = 1) order becomes start and decouple becomes both.
    """
    settings = {**configured, **point}
    k = float(settings.get("k", "1"))
    if _no_items(k, settings.get("retriever", "")):
        settings.update(retriever="none", k="0", order="start", ablation="both")
    elif _whole_k(k) == 1:
        settings["order"] = "start"
        if settings.get("ablation") == "decouple":
            settings["ablation"] = "both"
    return settings


__all__ = ["check_study_options", "effective_settings"]
