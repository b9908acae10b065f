"""The task registry: every task the model can learn, by name.

Every module here (but ``base`` and ``classification``, which hold what tasks share) defines
one :class:`Task` subclass; :data:`TASKS` collects them, so adding a task is adding a module.
Training, decoding, validation and ``speecheq score`` loop over this registry.
"""

import importlib
import inspect
import pkgutil

from speecheq.tasks.base import (
    Batch,
    Phase,
    Target,
    Task,
    TaskContext,
    TaskOptions,
    TaskScores,
    masked_mean,
)

REPORT_ORDER = (
    *("emotion", "intensity", "phone", "gender", "naturalness", "corpus", "speaker"),
    *("dimensional", "aae"),
)
"""The tasks reported first, in this order; any other follows by name."""


def _discover() -> dict[str, type[Task]]:
    found: dict[str, type[Task]] = {}
    for info in pkgutil.iter_modules(__path__):
        module = importlib.import_module(f"{__name__}.{info.name}")
        for _, value in inspect.getmembers(module, inspect.isclass):
            if (
                issubclass(value, Task)
                and "name" in vars(value)
                and value.__module__ == module.__name__
            ):
                found[value.name] = value
    rank = {name: index for index, name in enumerate(REPORT_ORDER)}
    return dict(sorted(found.items(), key=lambda item: (rank.get(item[0], len(rank)), item[0])))


TASKS: dict[str, type[Task]] = _discover()
"""Task name -> task class, in the order tasks are reported."""

__all__ = [
    "TASKS",
    "Batch",
    "Phase",
    "Target",
    "Task",
    "TaskContext",
    "TaskOptions",
    "TaskScores",
    "masked_mean",
]
