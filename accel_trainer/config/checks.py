"""Option limits and the checks shared by option groups: each returns problems as messages
(`--<option> <problem>: got <value>. <what to do>`), never raises on its own."""

from __future__ import annotations

import difflib
import os
from dataclasses import fields

from accel_trainer.errors import ConfigError

TINY_BERT = "tiny-bert"
SCHEDULERS = ("linear", "cosine", "constant_with_warmup", "constant")
MIXED_PRECISION = ("no", "fp16", "bf16")
REPORT_TO = ("none", "tensorboard", "wandb", "mlflow", "all")
# Trackers whose package is not a dependency: Accelerate silently skips them when missing.
OPTIONAL_TRACKERS = ("wandb", "mlflow")
MAX_SEED = 2**32 - 1  # numpy's limit; Accelerate's set_seed seeds numpy too
# tiny-bert allocates position embeddings of --max_seq_length; pretrained models are checked
# against their own limit once loaded.
TINY_BERT_MAX_SEQ_LENGTH = 8192
MAX_SEQ_LENGTH = 2**20
# Batches and step counts beyond int32 are typos: some overflow itertools or torch, the others
# would never finish.
MAX_COUNT = 2**31 - 1
MAX_DDP_TIMEOUT = 365 * 24 * 3600  # seconds; torch's clock overflows near 2**63 nanoseconds
# Field kinds (metadata "kind"): options are flags, from_options names and to_dict keys;
# "declared" fields are from_options names only; "internal" ones are none of these.
DECLARED, INTERNAL = "declared", "internal"


def opt(help_text: str, on_resume: str = "keep", **metadata) -> dict:
    """An option field's metadata: its one-line help, and what a resumed run may do with it:
    "keep" it as the checkpoint's run had it, "free"ly change it (how a step is computed or
    what is written, never what is learned), or change it as part of the "topology" (with
    --allow_topology_change)."""
    return {"help": help_text, "on_resume": on_resume, **metadata}


def demo_output_dir(task: str) -> str:
    return os.path.join("outputs", f"demo-{task}")


def is_blank(value: str | None) -> bool:
    """Given, but empty or only whitespace."""
    return value is not None and not value.strip()


def blank_problem(option: str, value: str, what_to_do: str) -> str:
    return f"--{option} is empty: got {value!r}. {what_to_do}"


def did_you_mean(name: str, known, prefix: str = "") -> str:
    """` Did you mean NAME?` for the closest known option name, or nothing."""
    wanted, known = name.lstrip("-").replace("-", "_"), list(known)
    close = difflib.get_close_matches(wanted, known, n=1) or misspelt_start(wanted, known)
    return f" Did you mean {prefix}{close[0]}?" if close else ""


# Option names of other tools (transformers' Trainer and scripts, Lightning, common training
# scripts) -> ours: suggested for a flag or config key that is no option here.
FAMILIAR_NAMES = {
    "epochs": "num_train_epochs",
    "num_epochs": "num_train_epochs",
    "max_epochs": "num_train_epochs",
    "lr": "learning_rate",
    "batch_size": "per_device_train_batch_size",
    "train_batch_size": "per_device_train_batch_size",
    "eval_batch_size": "per_device_eval_batch_size",
    "max_steps": "max_train_steps",
    "warmup_steps": "num_warmup_steps",
    "save_steps": "checkpointing_steps",
    "accumulate_grad_batches": "gradient_accumulation_steps",
    "max_length": "max_seq_length",
    "model": "model_name_or_path",
    "model_name": "model_name_or_path",
    "fp16": "mixed_precision",
    "bf16": "mixed_precision",
    "precision": "mixed_precision",
    "output": "output_dir",
    "eval_file": "validation_file",
    "dev_file": "validation_file",
    "resume": "resume_from_checkpoint",
    "gradient_clip_val": "max_grad_norm",
}


def did_you_mean_option(name: str, known, prefix: str = "") -> str:
    """did_you_mean for an option name, knowing the names other tools give our options."""
    familiar = FAMILIAR_NAMES.get(name.lstrip("-").replace("-", "_"))
    if familiar is not None and familiar in known:
        return f" Did you mean {prefix}{familiar}?"
    return did_you_mean(name, known, prefix)


def misspelt_start(wanted: str, known: list[str]) -> list[str]:
    """The one known name whose start is close to `wanted`: a misspelt abbreviation, such as
    outptu for output_file; none when the start is shared (output_dir and output_file)."""
    if len(wanted) < 3:
        return []
    names_by_start: dict[str, list[str]] = {}
    for name in known:
        names_by_start.setdefault(name[: len(wanted)], []).append(name)
    close = difflib.get_close_matches(wanted, list(names_by_start), n=1)
    return names_by_start[close[0]] if close and len(names_by_start[close[0]]) == 1 else []


def data_file_problems(paths: dict[str, str | None]) -> list[str]:
    """Why each given data file (option name: path) cannot be read; all of them at once."""
    found = []
    for option, path in paths.items():
        if path is None:
            continue
        if not path.strip():
            found.append(blank_problem(option, path, "Give a CoNLL or JSON lines file."))
        elif not os.path.exists(path):
            found.append(f"--{option} does not exist: got {path!r}. Check the path.")
        elif not os.path.isfile(path):
            found.append(
                f"--{option} is not a file: got {path!r}. Give a regular file, not a folder, "
                "pipe or device."
            )
        elif not os.access(path, os.R_OK):
            found.append(f"--{option} is not readable: got {path!r}. Check its permissions.")
    return found


def upper_bound_problems(options, bounds: dict[str, int]) -> list[str]:
    """Options above their limit, as `--name must be at most LIMIT: got VALUE.`"""
    found = []
    for name, limit in bounds.items():
        value = getattr(options, name)
        if value is not None and value > limit:
            found.append(f"--{name} must be at most {limit}: got {value}. Use a smaller value.")
    return found


def positive_problems(options, names: tuple[str, ...]) -> list[str]:
    """Options that must be 1 or more."""
    return [
        f"--{name} must be positive: got {getattr(options, name)}. Use 1 or more."
        for name in names
        if getattr(options, name) <= 0
    ]


def choice_problems(options) -> list[str]:
    """Options outside their choices; argparse checks flags, but not values from a config file."""
    found = []
    for option in fields(options):
        choices = option.metadata.get("choices")
        value = getattr(options, option.name)
        if choices and value is not None and value not in choices:
            found.append(
                f"--{option.name} is not one of {choices}: got {value!r}."
                f"{did_you_mean(str(value), choices)}"
            )
    return found


def sequence_length_problems(model_name_or_path: str, length: int) -> list[str]:
    """--max_seq_length above what the model can hold (tiny-bert's limit is lower)."""
    if length < 8:
        return []  # InputOptions reports it
    if model_name_or_path == TINY_BERT and length > TINY_BERT_MAX_SEQ_LENGTH:
        return [
            f"--max_seq_length must be at most {TINY_BERT_MAX_SEQ_LENGTH} for tiny-bert: got "
            f"{length}. Its position embeddings hold that many tokens; use e.g. 128 (NER "
            "evaluation windows long sentences anyway)."
        ]
    if length > MAX_SEQ_LENGTH:
        return [
            f"--max_seq_length must be at most {MAX_SEQ_LENGTH}: got {length}. Use the model's "
            "own limit or less, e.g. 512."
        ]
    return []


def model_problems(model_name_or_path: str) -> list[str]:
    if is_blank(model_name_or_path):
        return [
            blank_problem(
                "model_name_or_path", model_name_or_path, "Give a hub name or a model folder."
            )
        ]
    return []


def adapter_only_problems(model_name_or_path: str) -> list[str]:
    """Training starts from full weights: a --save_adapter_only folder has none of its own."""
    if not os.path.isfile(os.path.join(model_name_or_path, "adapter_config.json")):
        return []
    return [
        f"--model_name_or_path holds a LoRA adapter only (adapter_config.json, no weights of "
        f"its own): got {model_name_or_path!r}. Train from its base model (its adapter_config"
        ".json names it), or from a folder saved with merged weights (leave out "
        "--save_adapter_only)."
    ]


def saved_model_problems(model_name_or_path: str, command: str) -> list[str]:
    """evaluate and predict need a trained model, not the default tiny-bert."""
    if model_name_or_path == TINY_BERT:
        return [
            f"--model_name_or_path is missing: {command} needs a trained model. Give the output "
            "folder of a training run."
        ]
    return []


def output_dir_problems(output_dir: str | None) -> list[str]:
    if is_blank(output_dir):
        return [
            blank_problem(
                "output_dir",
                output_dir,
                "Name a folder for the results, or leave the option out for the default.",
            )
        ]
    return []


def options_class(task: str) -> type:
    """The options dataclass of the task registered as `task` (ConfigError if there is none)."""
    from accel_trainer.tasks.registry import get_task

    return get_task(task).options_class


def task_options_base() -> type:
    from accel_trainer.tasks.base import TaskOptions

    return TaskOptions


def known_data_formats() -> list[str]:
    """Every --data_format some registered task reads."""
    from accel_trainer.tasks.registry import get_task, task_names

    found: list[str] = []
    for name in task_names():
        found += [f for f in get_task(name).data_formats if f not in found]
    return found


def registered_task_options() -> dict[str, type]:
    """Every registered task's options class, by task name."""
    from accel_trainer.tasks.registry import task_names

    return {name: options_class(name) for name in task_names()}


def problems_error(found: list[str]) -> ConfigError:
    """One ConfigError for one or more problems, in the format of `validate`."""
    return ConfigError("invalid options:\n  " + "\n  ".join(found) if len(found) > 1 else found[0])
