"""`accel-trainer COMMAND`: parse options (config file, then flags) and run the command."""

from __future__ import annotations

import json
import logging
import os
import shlex
import sys
import types
import typing
from dataclasses import fields

from accel_trainer.config import EvalConfig, PredictConfig, TrainConfig
from accel_trainer.errors import (
    EXIT_DIVERGED,
    EXIT_PREEMPTED,
    ConfigError,
    Diverged,
    InputError,
    PeerLost,
    Preempted,
)

COMMANDS = {
    "train": (TrainConfig, "Fine-tune a model; with no data options, on the built-in demo corpus."),
    "evaluate": (EvalConfig, "Score a saved model on a labelled file."),
    "predict": (PredictConfig, "Label a file with a saved model; output in input order."),
}
CONFIG_SUFFIXES = (".yaml", ".yml", ".json")
USAGE = """usage: accel-trainer {train,evaluate,predict} [CONFIG_FILE] [--option value ...]

commands:
  train      Fine-tune a model; with no data options, on the built-in demo corpus
             (--task ner, the default, or --task re).
  evaluate   Score a saved model on a labelled file.
  predict    Label a file with a saved model; output in input order.
  plot       Draw a run's loss, learning rate and eval curves: accel-trainer plot OUTPUT_DIR
             [--output_file FILE.png] (default OUTPUT_DIR/training_curves.png).

`accel-trainer COMMAND --help` lists the options of a command. Under Accelerate:
  accelerate launch [--config_file accelerate_configs/X.yaml] -m accel_trainer train ...
"""


def main(argv: list[str] | None = None) -> int:
    """Entry point of `accel-trainer` and `python -m accel_trainer`; returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    if not argv or argv[0] in ("-h", "--help"):
        print(USAGE, file=sys.stdout if argv else sys.stderr)
        return 0 if argv else 2
    command, args = argv[0], argv[1:]
    if command == "plot":
        return plot_command(args)
    if command not in COMMANDS:
        report_error(f"unknown command: got {command!r}. Use one of {sorted(COMMANDS)}.")
        return 2
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO,
    )
    try:
        config = parse_config(COMMANDS[command][0], command, args)
        config.command_line = shlex.join(["accel-trainer", command, *args])  # for the model card
        from accel_trainer import commands

        getattr(commands, command)(config)
    except InputError as error:
        report_error(str(error))
        leave_process_group()
        return 2
    except Preempted as error:
        report_error(f"{error}. Resume with --resume_from_checkpoint auto.")
        return EXIT_PREEMPTED
    except Diverged as error:
        report_error(str(error))
        return EXIT_DIVERGED
    except PeerLost as error:
        # From every process: the first one of this machine may be the one that was lost.
        report_error(f"process {os.environ.get('RANK', '0')}: {error}", every_process=True)
        return 1
    return 0


def plot_command(args: list[str]) -> int:
    """`accel-trainer plot OUTPUT_DIR [--output_file FILE]`."""
    import argparse

    parser = argparse.ArgumentParser(
        prog="accel-trainer plot",
        description="Draw the loss, learning rate and eval metrics of a training run as a PNG.",
    )
    parser.add_argument("output_dir", help="the --output_dir of an accel-trainer train run")
    parser.add_argument(
        "--output_file", help="PNG to write (default: OUTPUT_DIR/training_curves.png)"
    )
    options = parser.parse_args(args)
    from accel_trainer.plot import plot

    try:
        path = plot(options.output_dir, options.output_file)
    except InputError as error:
        report_error(str(error))
        return 2
    print(f"Wrote {path}")
    return 0


def leave_process_group() -> None:
    """Tear the process group down before exiting: a process that exits holding one while its
    peers leave too can abort in gloo's destructor instead of returning its exit status."""
    import torch.distributed as dist

    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def report_error(message: str, every_process: bool = False) -> None:
    """One line on stderr, from the first process of each machine when several were launched."""
    if every_process or os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"accel-trainer: error: {message}", file=sys.stderr)


def parse_config(config_class: type, command: str, args: list[str]):
    """Options from an optional YAML/JSON file, overridden by command-line flags."""
    from transformers import HfArgumentParser

    config_path, args = split_config_path(args)
    parser = HfArgumentParser(
        config_class, prog=f"accel-trainer {command}", description=COMMANDS[command][1]
    )
    if config_path is not None:
        parser.set_defaults(**read_config_file(config_path, config_class))
    try:
        (config,) = parser.parse_args_into_dataclasses(args=args)
    except ValueError as error:  # unknown or positional arguments left over
        raise ConfigError(f"{error}. See `accel-trainer {command} --help`.") from None
    config.config = config_path
    return config


def split_config_path(args: list[str]) -> tuple[str | None, list[str]]:
    """Take the config file from the first positional argument or from --config."""
    rest = list(args)
    if rest and not rest[0].startswith("-"):
        return rest[0], rest[1:]
    for index, arg in enumerate(rest):
        if arg == "--config" and index + 1 < len(rest):
            return rest[index + 1], rest[:index] + rest[index + 2 :]
        if arg.startswith("--config="):
            return arg.split("=", 1)[1], rest[:index] + rest[index + 1 :]
    return None, rest


def read_config_file(path: str, config_class: type) -> dict:
    """The options of a YAML or JSON file, checked against the config's fields and types."""
    if not path.lower().endswith(CONFIG_SUFFIXES):
        raise ConfigError(
            f"config file must be .yaml, .yml or .json: got {path!r}. Rename it, or pass options "
            "as --flags."
        )
    if not os.path.isfile(path):
        raise ConfigError(f"config file does not exist: got {path!r}. Check the path.")
    with open(path, encoding="utf-8") as handle:
        try:
            if path.lower().endswith(".json"):
                values = json.load(handle)
            else:
                import yaml

                values = yaml.safe_load(handle) or {}
        except ValueError as error:  # json.JSONDecodeError and yaml.YAMLError
            raise ConfigError(f"config file {path} cannot be parsed: {error}.") from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option: value, got {type(values).__name__}."
        )
    hints = typing.get_type_hints(config_class)
    known = {option.name for option in fields(config_class)}
    options, problems = {}, []
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
            problems.append(f"config file {path} has an unknown option: got {key!r}.")
            continue
        try:
            options[name] = coerce(value, hints[name])
        except (TypeError, ValueError):
            booleans = isinstance(value, bool)
            hint = " YAML reads no, yes, on and off as booleans: quote them." if booleans else ""
            problems.append(
                f"config file {path} option {key!r} has the wrong type: got {value!r}, "
                f"expected {hints[name]}.{hint}"
            )
    if problems:
        raise ConfigError(" ".join(problems) + " See `accel-trainer COMMAND --help`.")
    return options


def coerce(value, hint):
    """Convert a file value to the field's type (YAML reads 5e-5 as a string, for one)."""
    if value is None:
        return None
    target = hint
    if typing.get_origin(hint) in (typing.Union, types.UnionType):  # X | None
        target = next(arg for arg in typing.get_args(hint) if arg is not type(None))
    if target is bool:
        if isinstance(value, str) and value.lower() in ("true", "false"):
            return value.lower() == "true"
        if not isinstance(value, bool):
            raise TypeError(value)
        return value
    if target in (int, float):
        if isinstance(value, bool):
            raise TypeError(value)
        converted = target(value)
        if target is int and float(value) != converted:
            raise ValueError(value)
        return converted
    if target is str:
        if isinstance(value, (bool, list, dict)):
            raise TypeError(value)
        return str(value)
    if typing.get_origin(target) is list:
        if not isinstance(value, list):
            raise TypeError(value)
        if not all(isinstance(item, (str, int, float)) for item in value):
            raise TypeError(value)
        return [str(item) for item in value]
    return value
