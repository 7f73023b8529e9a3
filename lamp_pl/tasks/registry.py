"""The task registry: every component finds a task by name here.

The LaMP tasks are registered on import; the LongLaMP and LaMP-QA tasks when first asked for (so
`task_names` lists what a run has used); a custom task is a JSON file of `Task` fields, loaded
by path. Adding a task is adding one entry: call `register_task`.
"""

from __future__ import annotations

from pathlib import Path

from lamp_pl.errors import ConfigError
from lamp_pl.tasks.lamp import LAMP_TASKS
from lamp_pl.tasks.longform import LONGFORM_TASKS
from lamp_pl.tasks.task import SHIPPED, Task, check_plain_name

_REGISTRY: dict[str, Task] = {}
_BUILTIN: dict[str, Task] = {}
"""The tasks shipped with lamp_pl; a custom spec may never take one of their names."""


_BENCHMARK: dict[str, Task] = {task.name: task for task in LONGFORM_TASKS}
"""The LongLaMP and LaMP-QA tasks, registered when first asked for (`lamp_pl.tasks.longform`)."""


def register_task(task: Task, overwrite: bool = False) -> Task:
    """Add `task` to the registry so that every component can find it by name.

    `overwrite` replaces a registered task of the same name on purpose; without it a name that is
    taken (a built-in task's included) is an error.
    """
    check_plain_name(task.name, "task name")
    if task.name in _REGISTRY and not overwrite and _REGISTRY[task.name] != task:
        raise ConfigError(f"task {task.name!r} is already registered")
    _REGISTRY[task.name] = task
    return task


def get_task(name: str | Task) -> Task:
    """Look a task up by registry name, or load a custom task from a ``.json`` spec file.

    A spec named like a built-in task is an error (it would silently replace the benchmark's
    definition); a spec is re-read on every call, and its caches are keyed by its content.
    """
    if isinstance(name, Task):
        return name
    if name in _REGISTRY:
        return _REGISTRY[name]
    if name in _BENCHMARK:
        return register_task(_BENCHMARK[name])
    if name.endswith(".json") and Path(name).is_file():
        task = Task.from_file(name)
        if task.name in _BUILTIN or task.name in _BENCHMARK:
            raise ConfigError(
                f"{name}: custom task name {task.name!r} is a built-in task's name; give the spec another name"
            )
        return register_task(task, overwrite=True)
    known = ", ".join(sorted({*task_names(), *_BENCHMARK}))
    raise ConfigError(f"unknown task {name!r}; known tasks: {known} (or a path to a task .json)")


def task_names() -> list[str]:
    """Every registered task: the built-in ones and the custom specs loaded so far."""
    return sorted(_REGISTRY)


def benchmark_task_names() -> list[str]:
    """The LongLaMP and LaMP-QA tasks (read with `datasets`; see `lamp_pl.tasks.longform`)."""
    return sorted(_BENCHMARK)


def builtin_task_names() -> list[str]:
    """The LaMP tasks lamp_pl ships (`LaMP_1` .. `LaMP_7`, `LaMP_2N`), whatever else is registered."""
    return sorted(_BUILTIN)


for _task in LAMP_TASKS:
    _BUILTIN[_task.name] = register_task(_task)
SHIPPED.update(_BUILTIN)
SHIPPED.update(_BENCHMARK)

__all__ = ["benchmark_task_names", "builtin_task_names", "get_task", "register_task", "task_names"]
