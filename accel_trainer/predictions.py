"""Writing `predict` output (the task writes the records): atomically, marked as ours, and
never over the input, the model or a file that is not an earlier prediction."""

from __future__ import annotations

import io
import json
import os
import stat

from accel_trainer.checkpoint import why_unwritable, write_atomically
from accel_trainer.errors import ConfigError
from accel_trainer.hashing import file_digest, text_digest
from accel_trainer.tasks.base import PredictionInput


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
    """Write the predictions of every input example, in input order, atomically, and mark the
    file as a prediction output (which a later predict may replace)."""
    id2label = {int(i): label for i, label in id2label.items()}
    handle = io.StringIO()
    task.write_predictions(raw, rows, id2label, handle, source)
    text = handle.getvalue()
    write_atomically(config.output_file, text)
    record = {
        "sha256": text_digest(text),
        "model_name_or_path": os.path.abspath(config.model_name_or_path),
        "input_file": os.path.abspath(config.input_file),
    }
    write_atomically(prediction_mark(config.output_file), json.dumps(record) + "\n")


def prediction_mark(path: str) -> str:
    """The hidden file beside a prediction output that says accel-trainer wrote it."""
    folder, name = os.path.split(os.path.abspath(path))
    return os.path.join(folder, f".{name}.accel-trainer-predict.json")


def is_prediction_output(path: str) -> bool:
    """Whether `path` is, unchanged, a file that an earlier predict wrote."""
    try:
        with open(prediction_mark(path), encoding="utf-8") as handle:
            expected = json.load(handle)["sha256"]
        return file_digest(path) == expected
    except (OSError, ValueError, KeyError, TypeError):
        return False


def file_kind(path: str) -> str:
    mode = os.stat(path).st_mode
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "not a regular file"


def check_output_file(config) -> None:
    """Refuse an --output_file that would replace the input, go into the model folder (any
    file there may be one the model or tokenizer reads), or replace an existing file that is
    not an earlier prediction output (without --overwrite_output_file)."""
    path = config.output_file
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(
            f"--output_file is in a folder that does not exist: got {path!r}. Create the folder "
            "first."
        )
    if os.path.isdir(path) or path.endswith(("/", os.sep)):
        raise ConfigError(f"--output_file is a folder: got {path!r}. Name a file.")
    if os.path.exists(path) and not os.path.isfile(path):  # a device, a pipe, a socket
        raise ConfigError(
            f"--output_file is not a regular file: got {path!r} ({file_kind(path)}). Name a "
            "file: predictions are written whole to a new file and renamed into place."
        )
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
    exists = os.path.lexists(path)
    overwrite = getattr(config, "overwrite_output_file", False)
    if exists and not overwrite and not is_prediction_output(path):
        raise ConfigError(
            f"--output_file already exists and is not an earlier prediction output: got "
            f"{path!r}. Name another file, or pass --overwrite_output_file to replace it."
        )
    why = why_unwritable(folder)
    if why is not None:
        raise ConfigError(
            f"--output_file cannot be written: got {path!r} ({why}). Choose a folder you can "
            "write to."
        )
