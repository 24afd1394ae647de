"""Task names -> task classes: the built-in tasks and any a user registers; feeds `--task`."""

from __future__ import annotations

import difflib
import importlib

from accel_trainer.errors import ConfigError
from accel_trainer.tasks.base import Task

# Built-in tasks by module path, imported on first use so that `--help` stays fast.
BUILT_IN = {"ner": "accel_trainer.tasks.ner:NerTask", "re": "accel_trainer.tasks.re:ReTask"}
_registered: dict[str, type[Task]] = {}


def register_task(task_class: type[Task]) -> type[Task]:
    """Make `task_class` (a Task subclass) available as `--task <task_class.name>`; returns it,
    so that it can decorate the class."""
    if not (isinstance(task_class, type) and issubclass(task_class, Task)):
        raise ConfigError(
            f"register_task needs a subclass of accel_trainer.Task: got {task_class!r}. Derive "
            "your task from accel_trainer.Task."
        )
    name = getattr(task_class, "name", None)
    if not isinstance(name, str) or not name.strip():
        raise ConfigError(
            f"register_task needs a task class with a `name`: got {task_class!r}. Set "
            "name = 'my-task' on the class."
        )
    _registered[name] = task_class
    return task_class


def task_names() -> list[str]:
    """Every task `--task` accepts, built-in first."""
    return [*BUILT_IN, *(name for name in _registered if name not in BUILT_IN)]


def get_task(name: str) -> type[Task]:
    """The task class registered as `name`."""
    if name in _registered:
        return _registered[name]
    if name in BUILT_IN:
        module, attribute = BUILT_IN[name].split(":")
        return register_task(getattr(importlib.import_module(module), attribute))
    close = difflib.get_close_matches(str(name), task_names(), n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"--task is not a registered task: got {name!r}. {hint}Use one of {task_names()}, or "
        "register your own with accel_trainer.register_task."
    )
