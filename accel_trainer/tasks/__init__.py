"""Tasks turn files into tensors and predictions into metrics; they know nothing of ranks."""

from accel_trainer.errors import ConfigError
from accel_trainer.tasks.base import Task
from accel_trainer.tasks.ner import TAG_SCHEMES, NerTask
from accel_trainer.tasks.re import ReTask


def task_for_training(config) -> Task:
    """The task a `train` run asks for, configured from its options."""
    options = config.task_options
    if config.task == "re":
        return ReTask(options.markers(), options.typed_markers, options.negative_label)
    return NerTask(label_all_tokens=options.label_all_tokens, tag_scheme=options.tag_scheme)


def task_from_settings(settings: dict | None, model_dir: str) -> Task:
    """The task a saved model was trained for, from the `accel_trainer` entry of its config."""
    settings = settings if isinstance(settings, dict) else {}
    name = settings.get("task")
    try:
        if name == "ner":
            scheme = settings.get("tag_scheme", "bio")
            if scheme not in TAG_SCHEMES:
                raise KeyError("tag_scheme")
            return NerTask(tag_scheme=scheme)
        if name == "re":
            markers = settings["entity_markers"]
            if not (isinstance(markers, list) and len(markers) == 4):
                raise KeyError("entity_markers")
            return ReTask(
                [str(marker) for marker in markers],
                bool(settings.get("typed_markers", False)),
                settings.get("negative_label"),
                list(settings.get("entity_types") or []),
            )
    except (KeyError, TypeError) as error:
        raise ConfigError(
            f"--model_name_or_path has an incomplete accel_trainer entry in its config.json: got "
            f"{model_dir!r}, whose task {name!r} lacks a valid {error}. Give the folder that "
            "`accel-trainer train` saved, unchanged."
        ) from None
    raise ConfigError(
        f"--model_name_or_path has no accel_trainer task in its config.json: got {model_dir!r}. "
        "Give a folder saved by `accel-trainer train`, or add "
        '"accel_trainer": {"task": "ner"} to its config.json.'
    )


__all__ = ["NerTask", "ReTask", "Task", "task_for_training", "task_from_settings"]
