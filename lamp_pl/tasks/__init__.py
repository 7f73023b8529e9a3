"""Tasks: everything that differs between tasks, one `Task` entry each, found by name.

`task.py` is the `Task` record; `lamp.py` the LaMP benchmark's tasks; `longform.py` LongLaMP's and
LaMP-QA's (with where their data is published); `registry.py` the lookup every component uses
(`get_task("LaMP_4")`, or a path to a custom task's JSON spec).
"""

from lamp_pl.tasks.registry import benchmark_task_names, builtin_task_names, get_task, register_task, task_names
from lamp_pl.tasks.task import MetricKind, Task, check_plain_name, quoted_strings

__all__ = [
    "MetricKind",
    "Task",
    "benchmark_task_names",
    "builtin_task_names",
    "check_plain_name",
    "get_task",
    "quoted_strings",
    "register_task",
    "task_names",
]
