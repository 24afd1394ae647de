"""How the built-in tasks are worded beyond the Task interface: what messages and the model card
call their examples and rows, and the model card's usage code. Any other task gets the defaults:
"example", "row", and the transformers pipeline of its pipeline_tag."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from accel_trainer.tasks.base import Task

# Built-in task -> (what one example is called, what tokenize() makes of an example where there
# are more): NER evaluation scores a long sentence in several windows.
WORDS = {"ner": ("sentence", "window")}
DEFAULT_WORDS = ("example", "row")


def built_in_name(task: Task) -> str | None:
    """The name of the built-in task that `task` is or derives from (a task class of this
    package), else None."""
    for task_class in type(task).__mro__:
        if task_class.__module__.startswith("accel_trainer.tasks.") and "name" in vars(task_class):
            return task_class.name
    return None


def example_word(task: Task) -> str:
    """What one example of `task` is called in messages and the model card."""
    return WORDS.get(built_in_name(task), DEFAULT_WORDS)[0]


def count_text(task: Task, num_examples: int, num_rows: int) -> str:
    """A tokenized split's size for the log, in the words of the length report: its
    examples, and where the rows differ, the dropped examples or the rows they became."""
    example, row = WORDS.get(built_in_name(task), DEFAULT_WORDS)
    counted = f"{num_examples} {example}{'' if num_examples == 1 else 's'}"
    if num_rows < num_examples:
        return f"{counted} ({num_examples - num_rows} dropped)"
    if num_rows > num_examples:
        return f"{counted} ({num_rows} {row}s)"
    return counted


def usage_code(task: Task, model_path: str, example: dict | None = None) -> str:
    """Python that loads the saved model at `model_path` and labels one example (`example`: an
    example of the run's own evaluation data, as the task read it), for the model card; by
    default the pipeline of the task's pipeline_tag, loaded."""
    return USAGE.get(built_in_name(task), pipeline_usage)(task, model_path, example)


def pipeline_usage(task: Task, model_path: str, example: dict | None = None) -> str:
    return (
        "from transformers import pipeline\n\n"
        f"model = pipeline({quoted(task.pipeline_tag)}, model={quoted(model_path)})\n"
    )


def ner_usage(task: Task, model_path: str, example: dict | None = None) -> str:
    """The token-classification pipeline, each word tagged by its first sub-token (as the
    model was trained and as `predict` reads it; "simple" would cut entities inside words)."""
    sentence = " ".join(example["tokens"]) if example else "John Smith moved to Oslo in May ."
    return (
        "from transformers import pipeline\n\n"
        f'ner = pipeline("token-classification", model={quoted(model_path)}, '
        'aggregation_strategy="first")\n'
        f"print(ner({quoted(sentence)}))\n"
    )


def re_usage(task: Task, model_path: str, example: dict | None = None) -> str:
    """The text-classification pipeline on a text marked as the model was trained: the run's
    markers (typed with the training data's types where they are typed)."""
    if example is None:
        types = task.entity_types or [""]
        example = {"text": "Tom works for Acme .", "head": [0, 3], "tail": [14, 18]}
        example.update(head_type=types[0], tail_type=types[-1])
    head_open, head_close, tail_open, tail_close = task.markers
    return (
        "from transformers import pipeline\n\n"
        f'relation = pipeline("text-classification", model={quoted(model_path)})\n'
        f"# The head entity between {head_open} and {head_close}, the tail between "
        f"{tail_open} and {tail_close}, as in training:\n"
        f"print(relation({quoted(task.marked_text(example))}))\n"
    )


USAGE = {"ner": ner_usage, "re": re_usage}


def quoted(text: str) -> str:
    """A Python string literal of `text` in double quotes, for code shown to users."""
    return json.dumps(text, ensure_ascii=False)
