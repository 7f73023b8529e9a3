"""lamp_pl: retrieval-augmented personalization of language models on LaMP, with Lightning.

The public face: what a user's own script needs, imported on first use so that `import lamp_pl`
stays cheap (it runs on every DDP rank and in every grid worker).

* `LaMPData` - the plain pipeline: a task's splits, retrieval, prompts and tokenized batches.
* `LaMPDataModule` - its Lightning shell; `LaMPModel` - the LightningModule over a generator.
* `build_prompt`, `PromptOptions` - the prompt builder (pure functions of task, input, items).
* `get_task`, `register_task`, `Task` - the task registry.
* `score_predictions` - the official metrics of a predictions file (`lamp-pl evaluate`).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

__version__ = "0.2.0"

_EXPORTS = {
    "LaMPData": "lamp_pl.pipeline.data",
    "LaMPDataModule": "lamp_pl.lightning.datamodule",
    "LaMPModel": "lamp_pl.lightning.module",
    "PromptOptions": "lamp_pl.prompts",
    "build_prompt": "lamp_pl.prompts",
    "Task": "lamp_pl.tasks",
    "get_task": "lamp_pl.tasks",
    "register_task": "lamp_pl.tasks",
    "score_predictions": "lamp_pl.evaluation.score",
}

if TYPE_CHECKING:
    from lamp_pl.evaluation.score import score_predictions
    from lamp_pl.lightning.datamodule import LaMPDataModule
    from lamp_pl.lightning.module import LaMPModel
    from lamp_pl.pipeline.data import LaMPData
    from lamp_pl.prompts import PromptOptions, build_prompt
    from lamp_pl.tasks import Task, get_task, register_task


def __getattr__(name: str) -> Any:
    """Import a public name's module when the name is first used."""
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lamp_pl' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted([*_EXPORTS, "__version__"])


__all__ = [
    "LaMPData",
    "LaMPDataModule",
    "LaMPModel",
    "PromptOptions",
    "Task",
    "build_prompt",
    "get_task",
    "register_task",
    "score_predictions",
]
