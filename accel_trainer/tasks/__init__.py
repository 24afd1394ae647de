"""Tasks turn files into tensors and predictions into metrics; they know nothing of ranks."""

from accel_trainer.tasks.base import Task
from accel_trainer.tasks.ner import NerTask


def get_task(name: str) -> Task:
    """The task object for a `--task` value."""
    tasks = {"ner": NerTask}
    return tasks[name]()


__all__ = ["NerTask", "Task", "get_task"]
