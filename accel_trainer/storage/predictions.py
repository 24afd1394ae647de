"""Writing `predict` output (the task writes the records) by the write policy, and never over
the input or into the model folder."""

from __future__ import annotations

import io
import os

from accel_trainer.errors import ConfigError
from accel_trainer.storage.write_policy import check_target, write_owned
from accel_trainer.tasks.base import PredictionInput

WHAT = "--output_file"


def prediction_input(config, task, labels: list[str]) -> PredictionInput:
    """What predict reads and writes, checked against what the model's task can do."""
    if config.output_format not in task.output_formats:
        raise ConfigError(
            f"--output_format is not a format of the model's task {task.name!r}: got "
            f"{config.output_format!r}. Use one of {list(task.output_formats)}."
        )
    if config.text_format is not None and not task.reads_text:
        raise ConfigError(
            f"--text_format is for tasks that read raw text: got --text_format "
            f"{config.text_format}, and the model's task {task.name!r} does not. Leave it out."
        )
    data = config.data
    return PredictionInput(
        config.input_file,
        data.data_format,
        data.max_seq_length,
        config.output_format,
        config.text_format,
        tuple(labels),
    )


def write_predictions(task, raw, rows: dict, id2label: dict, config, source) -> None:
    """Write the predictions of every input example, in input order, by the write policy."""
    id2label = {int(i): label for i, label in id2label.items()}
    handle = io.StringIO()
    task.write_predictions(raw, rows, id2label, handle, source)
    write_owned(config.output_file, handle.getvalue(), config.overwrite_output_file, WHAT)


def check_output_file(config) -> None:
    """Refuse an --output_file that would replace the input, go into the model folder (any
    file there may be one the model or tokenizer reads), or that the write policy refuses."""
    path = config.output_file
    target = os.path.realpath(path)
    if os.path.exists(config.input_file) and target == os.path.realpath(config.input_file):
        raise ConfigError(
            f"--output_file is the --input_file: got {path!r} (the same file). Write the "
            "predictions to another file; the input is never replaced."
        )
    model_dir = os.path.realpath(config.model_name_or_path)
    if target.startswith(model_dir + os.sep):
        raise ConfigError(
            f"--output_file is inside the model folder: got {path!r}. Write the predictions "
            "outside it; the model folder is never written to."
        )
    check_target(path, WHAT, config.overwrite_output_file)
