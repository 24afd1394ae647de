"""Tasks turn files into tensors and predictions into metrics; they know nothing of ranks."""

from __future__ import annotations

from accel_trainer.errors import ConfigError
from accel_trainer.tasks.base import Task, TaskOptions
from accel_trainer.tasks.ner import NerTask
from accel_trainer.tasks.re import ReTask
from accel_trainer.tasks.registry import get_task, register_task, task_names


def task_for_training(name: str, options: TaskOptions | None = None) -> Task:
    """The task `--task name` asks for, configured from its options (its options_class)."""
    task_class = get_task(name)
    return task_class.from_options(options if options is not None else task_class.options_class())


def task_from_settings(settings: dict | None, model_dir: str) -> Task:
    """The task a saved model was trained for, from the `accel_trainer` entry of its config."""
    settings = settings if isinstance(settings, dict) else {}
    name = settings.get("task")
    if not isinstance(name, str) or not name:
        raise ConfigError(
            f"--model_name_or_path has no accel_trainer task in its config.json: got "
            f"{model_dir!r}. Give a folder saved by `accel-trainer train`, or add "
            '"accel_trainer": {"task": "ner"} to its config.json.'
        )
    if name not in task_names():
        raise ConfigError(
            f"--model_name_or_path was trained for a task that is not registered: got "
            f"{model_dir!r}, whose task is {name!r}. Register it with "
            "accel_trainer.register_task before loading the model (or install the package that "
            f"declares it as an accel_trainer.tasks entry point); registered: {task_names()}."
        )
    try:
        return get_task(name).from_settings(settings, model_dir)
    except (KeyError, TypeError) as error:
        raise ConfigError(
            f"--model_name_or_path has an incomplete accel_trainer entry in its config.json: got "
            f"{model_dir!r}, whose task {name!r} lacks a valid {error}. Give the folder that "
            "`accel-trainer train` saved, unchanged."
        ) from None


__all__ = [
    "NerTask",
    "ReTask",
    "Task",
    "TaskOptions",
    "get_task",
    "register_task",
    "task_for_training",
    "task_from_settings",
    "task_names",
]
