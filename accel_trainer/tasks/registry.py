"""Task names -> task classes: the built-in tasks, those installed packages declare (entry
point group `accel_trainer.tasks`) and those registered in this process; feeds `--task`."""

from __future__ import annotations

import difflib
import importlib
import inspect
import re
from importlib.metadata import entry_points

from accel_trainer.errors import ConfigError
from accel_trainer.tasks.base import Task

# Built-in tasks by module path, imported on first use so that `--help` stays fast.
BUILT_IN = {
    "ner": "accel_trainer.tasks.ner.task:NerTask",
    "re": "accel_trainer.tasks.re.task:ReTask",
}
ENTRY_POINTS = "accel_trainer.tasks"  # name = "package.module:TaskClass" in pyproject.toml
TASK_NAME = re.compile(r"[A-Za-z][\w.-]*")  # usable as `--task NAME` and in a folder name
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
    if not isinstance(name, str) or not TASK_NAME.fullmatch(name):
        raise ConfigError(
            f"register_task needs a task class whose `name` is a word (letters, digits, - _ .): "
            f"got {name!r} on {task_class!r}. Set e.g. name = 'my-task' on the class."
        )
    if inspect.isabstract(task_class):
        missing = sorted(task_class.__abstractmethods__)
        raise ConfigError(
            f"register_task needs a complete task: {task_class.__name__} does not define "
            f"{', '.join(missing)}. Write those methods (see accel_trainer.Task)."
        )
    taken = _registered.get(name)
    owner = qualified_name(taken) if taken else (declared(name) or "").replace(":", ".")
    if owner and owner != qualified_name(task_class):
        raise ConfigError(
            f"register_task: the task name {name!r} is taken by {owner}: got "
            f"{qualified_name(task_class)}. Give your task another name."
        )
    _registered[name] = task_class
    return task_class


def qualified_name(task_class: type) -> str:
    return f"{task_class.__module__}.{task_class.__qualname__}"


def declared(name: str) -> str | None:
    """Where the built-in or installed task of this name is, as "module:Class"; None if none."""
    return BUILT_IN.get(name) or installed().get(name)


def installed() -> dict[str, str]:
    """Tasks that installed packages declare: name -> "module:Class"."""
    return {point.name: point.value for point in entry_points(group=ENTRY_POINTS)}


def task_names() -> list[str]:
    """Every task `--task` accepts: built-in, then installed, then registered here."""
    names = [*BUILT_IN]
    for name in [*installed(), *_registered]:
        if name not in names:
            names.append(name)
    return names


def get_task(name: str) -> type[Task]:
    """The task class registered as `name` (built-in and installed ones imported now)."""
    if name in _registered:
        return _registered[name]
    where = declared(name)
    if where is not None:
        module, attribute = where.split(":")
        task_class = importlib.import_module(module)
        for part in attribute.split("."):
            task_class = getattr(task_class, part)
        return register_task(task_class)
    close = difflib.get_close_matches(str(name), task_names(), n=1)
    hint = f"Did you mean {close[0]!r}? " if close else ""
    raise ConfigError(
        f"--task is not a registered task: got {name!r}. {hint}Use one of {task_names()}, or "
        "register your own with accel_trainer.register_task (or, for the command line, an "
        f"entry point in the {ENTRY_POINTS!r} group of an installed package)."
    )
