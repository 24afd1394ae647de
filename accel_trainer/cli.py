"""`accel-trainer COMMAND`: parse options (config file, then flags) and run the command."""

from __future__ import annotations

import difflib
import json
import logging
import os
import re
import reprlib
import shlex
import sys
import types
import typing
from dataclasses import fields

from accel_trainer.config import EvalConfig, PredictConfig, TrainConfig, problems_error
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
logger = logging.getLogger("accel_trainer")
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

    parser = one_line_errors(argparse.ArgumentParser, "plot")(
        prog="accel-trainer plot",
        description="Draw the loss, learning rate and eval metrics of a training run as a PNG.",
    )
    parser.add_argument("output_dir", help="the --output_dir of an accel-trainer train run")
    parser.add_argument(
        "--output_file", help="PNG to write (default: OUTPUT_DIR/training_curves.png)"
    )
    from accel_trainer.plot import plot

    try:
        options = parser.parse_args(args)
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
    parser = one_line_errors(HfArgumentParser, command)(
        config_class, prog=f"accel-trainer {command}", description=COMMANDS[command][1]
    )
    if config_path is not None:
        parser.set_defaults(**read_config_file(config_path, config_class, command))
    for flag, count in repeated_flags(args, config_class).items():
        logger.warning("--%s is given %d times on the command line: the last one wins", flag, count)
    # No hidden `.args` file next to the entry point: the options are the file and the flags.
    config, rest = parser.parse_args_into_dataclasses(
        args=args, return_remaining_strings=True, look_for_args_file=False
    )
    if rest:
        raise problems_error(leftover_problems(rest, config_class, command))
    config.config = config_path
    return config


def one_line_errors(parser_class: type, command: str) -> type:
    """`parser_class` whose errors raise ConfigError (one line, exit 2) instead of printing the
    whole usage, which lists every option, and exiting."""

    class Parser(parser_class):
        def error(self, message: str):
            raise ConfigError(f"{argparse_problem(message)} See `accel-trainer {command} --help`.")

    return Parser


ARGPARSE_PROBLEMS = [
    (r"argument (\S+): invalid int value: (.*)", "{} must be a whole number: got {}."),
    (r"argument (\S+): invalid float value: (.*)", "{} must be a number: got {}."),
    (r"argument (\S+): expected one argument", "{} needs a value: got none."),
    (r"argument (\S+): expected at least one argument", "{} needs at least one value: got none."),
    (r"argument (\S+): Truthy value expected: got (\S+) .*", "{} must be true or false: got {!r}."),
    (
        r"argument (\S+): invalid choice: (\S+) \(choose from (.*)\)",
        "{0} is not one of {2}: got {1}.",
    ),
    (r"ambiguous option: (\S+) could match (.*)", "{} is ambiguous: it could be {}. Spell it out."),
    (r"the following arguments are required: (.*)", "{} is missing: got none."),
]


def argparse_problem(message: str) -> str:
    """An argparse error in our format: `--seed must be a whole number: got '1.5'.`"""
    for pattern, text in ARGPARSE_PROBLEMS:
        match = re.fullmatch(pattern, message)
        if match:
            first, *others = match.groups()
            return text.format(first.split("/")[0], *others)
    return message.removeprefix("argument ").rstrip(".") + "."


def option_spellings(config_class: type) -> dict[str, str]:
    """Each flag HfArgumentParser accepts for `config_class`, mapped to its option name."""
    spellings = {}
    for option in fields(config_class):
        names = {option.name, option.name.replace("_", "-")}
        if option.default is True:  # HfArgumentParser adds --no_NAME for flags that default on
            names |= {f"no_{option.name}", f"no-{option.name.replace('_', '-')}"}
        spellings.update({f"--{name}": option.name for name in names})
    return spellings


def repeated_flags(args: list[str], config_class: type) -> dict[str, int]:
    """Options given more than once (argparse keeps the last silently), with their counts."""
    spellings = option_spellings(config_class)
    counts: dict[str, int] = {}
    for arg in args:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        name = spellings.get(flag)
        if name is None and flag.startswith("--"):  # argparse takes unambiguous abbreviations
            matches = {name for spelling, name in spellings.items() if spelling.startswith(flag)}
            name = matches.pop() if len(matches) == 1 else None
        if name is not None:
            counts[name] = counts.get(name, 0) + 1
    return {name: count for name, count in counts.items() if count > 1}


def did_you_mean(name: str, config_class: type, prefix: str = "") -> str:
    close = difflib.get_close_matches(
        name.lstrip("-").replace("-", "_"), [option.name for option in fields(config_class)], n=1
    )
    return f" Did you mean {prefix}{close[0]}?" if close else ""


def leftover_problems(rest: list[str], config_class: type, command: str) -> list[str]:
    """One message per argument that is no option of `command` (their values are skipped)."""
    found = []
    for index, arg in enumerate(rest):
        if arg.startswith("-") and not looks_like_number(arg):
            flag = arg.split("=", 1)[0]
            found.append(
                f"{flag} is not an option of accel-trainer {command}: got {arg!r}."
                f"{did_you_mean(flag, config_class, '--')} See `accel-trainer {command} --help`."
            )
            continue
        after_unknown = (
            index > 0 and rest[index - 1].startswith("--") and "=" not in rest[index - 1]
        )
        if after_unknown:
            continue  # the value of the unknown option before it
        where = (
            "A config file goes first, right after the command."
            if arg.lower().endswith(CONFIG_SUFFIXES)
            else "Give options as --name value."
        )
        found.append(f"unexpected argument: got {arg!r}. {where}")
    return found


def looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def split_config_path(args: list[str]) -> tuple[str | None, list[str]]:
    """Take the config file from the first positional argument or from --config."""
    rest, paths = list(args), []
    if rest and not rest[0].startswith("-"):
        paths.append(rest.pop(0))
    index = 0
    while index < len(rest) and rest[index] != "--":
        arg = rest[index]
        if arg == "--config" and index + 1 < len(rest):
            paths.append(rest[index + 1])
            del rest[index : index + 2]
        elif arg.startswith("--config="):
            paths.append(arg.split("=", 1)[1])
            del rest[index]
        else:
            index += 1
    if len(paths) > 1:
        raise ConfigError(
            f"config file is given {len(paths)} times: got {', '.join(map(repr, paths))}. Give "
            "one; flags on the command line override its options."
        )
    return (paths[0] if paths else None), rest


def read_config_file(path: str, config_class: type, command: str = "COMMAND") -> dict:
    """The options of a YAML or JSON file, checked against the config's fields and types."""
    if not path.lower().endswith(CONFIG_SUFFIXES):
        raise ConfigError(
            f"config file must be .yaml, .yml or .json: got {path!r}. Rename it, or pass options "
            "as --flags."
        )
    if os.path.isdir(path):
        raise ConfigError(f"config file is a folder: got {path!r}. Give a .yaml or .json file.")
    if not os.path.exists(path):
        raise ConfigError(f"config file does not exist: got {path!r}. Check the path.")
    try:
        with open(path, "rb") as handle:
            data = handle.read()
    except OSError as error:
        raise ConfigError(
            f"config file cannot be read: got {path!r} ({error.strerror}). Check its permissions."
        ) from None
    try:
        text = data.decode("utf-8-sig")  # a byte-order mark is harmless
    except UnicodeDecodeError as error:
        number = data[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"config file {path} line {number} is not UTF-8 text: got "
            f"{data.splitlines()[number - 1][:60]!r}. Re-encode it as UTF-8, e.g. "
            "`iconv -f latin1 -t utf-8 IN > OUT`."
        ) from None
    try:
        load = load_json if path.lower().endswith(".json") else load_yaml
        values, found = load(path, text)
    except RecursionError:
        raise ConfigError(
            f"config file {path} is nested too deeply: got more than {sys.getrecursionlimit()} "
            "levels. Write one `option: value` per line."
        ) from None
    if not isinstance(values, dict):
        raise ConfigError(
            f"config file {path} must hold a mapping of option: value: got a "
            f"{type(values).__name__}. Write one `option: value` per line."
        )
    hints = typing.get_type_hints(config_class)
    known = {option.name for option in fields(config_class)}
    options, keys = {}, {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
            found.append(
                f"config file {path} has an unknown option: got {key!r}."
                f"{did_you_mean(str(key), config_class)} See `accel-trainer {command} --help`."
            )
            continue
        if name in keys:
            found.append(
                f"config file {path} gives option {name!r} twice: got {keys[name]!r} and "
                f"{key!r}. Keep one of them."
            )
            continue
        keys[name] = key
        if name == "config":
            found.append(
                f"config file {path} names another config file: got {short(value)}. Config "
                "files do not nest: copy its options into this one."
            )
            continue
        if value is None and type(None) not in typing.get_args(hints[name]):
            found.append(
                f"config file {path} option {key!r} has no value: got null. Give a value, or "
                "remove the line to keep the default."
            )
            continue
        try:
            options[name] = coerce(value, hints[name])
        except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
            booleans = isinstance(value, bool)
            hint = " YAML reads no, yes, on and off as booleans: quote them." if booleans else ""
            found.append(
                f"config file {path} option {key!r} has the wrong type: got {short(value)}, "
                f"expected {type_words(hints[name])}.{hint}"
            )
    if found:
        raise problems_error(found)
    return options


def load_json(path: str, text: str) -> tuple[object, list[str]]:
    """The parsed file, and a problem for each key given twice in one object."""
    if not text.strip():
        raise ConfigError(
            f"config file {path} is empty: got no options. Write a JSON object such as "
            '{"seed": 1}, or leave the file out.'
        )
    repeated = []

    def mapping(pairs: list[tuple[str, object]]) -> dict:
        keys = [key for key, _ in pairs]
        repeated.extend(key for index, key in enumerate(keys) if key in keys[:index])
        return dict(pairs)

    try:
        values = json.loads(text, object_pairs_hook=mapping)
    except json.JSONDecodeError as error:
        line = text.splitlines()[error.lineno - 1] if text.splitlines() else ""
        raise ConfigError(
            f"config file {path} line {error.lineno} column {error.colno} is not valid JSON "
            f"({error.msg}): got {line.strip()[:80]!r}. Fix the syntax there."
        ) from None
    found = [
        f"config file {path} gives option {key!r} more than once. Keep one of them."
        for key in dict.fromkeys(repeated)
    ]
    return values, found


def load_yaml(path: str, text: str) -> tuple[object, list[str]]:
    """The parsed file (safely: no Python tags), and a problem for each key given twice."""
    import yaml

    repeated = []

    class Loader(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            lines: dict[str, list[int]] = {}
            for key_node, _ in node.value:
                if isinstance(key_node, yaml.ScalarNode):
                    lines.setdefault(key_node.value, []).append(key_node.start_mark.line + 1)
            repeated.extend((key, at) for key, at in lines.items() if len(at) > 1)
            return super().construct_mapping(node, deep)

    try:
        values = yaml.load(text, Loader=Loader)  # a SafeLoader: plain values only
    except yaml.MarkedYAMLError as error:
        raise ConfigError(yaml_problem(path, text, error)) from None
    except yaml.YAMLError as error:
        raise ConfigError(f"config file {path} is not valid YAML: got {error}. Fix it.") from None
    found = [
        f"config file {path} gives option {key!r} twice: got it on lines "
        f"{' and '.join(map(str, at))}. Keep one of them."
        for key, at in repeated
    ]
    return ({} if values is None else values), found


def yaml_problem(path: str, text: str, error) -> str:
    """What is wrong where in a YAML file: `config file F line 3 column 7 ...`."""
    mark = error.problem_mark or error.context_mark
    where = f"config file {path}"
    lines = text.splitlines()
    line = ""
    if mark is not None:
        where += f" line {mark.line + 1} column {mark.column + 1}"
        line = lines[mark.line].strip()[:80] if mark.line < len(lines) else ""
    problem = error.problem or str(error)
    tag = re.search(r"constructor for the tag '([^']*)'", problem)
    if tag:
        name = tag.group(1).replace("tag:yaml.org,2002:", "!!")
        kind = "a Python tag" if name.startswith("!!python") else "a tag"
        return (
            f"{where} has {kind}, which config files may not use: got {name!r}. Write plain "
            "values: numbers, strings, true/false and lists."
        )
    context = f"{error.context}: " if error.context else ""
    hint = " YAML indents with spaces, not tabs." if "\\t" in problem else ""
    return (
        f"{where} is not valid YAML ({context}{problem}): got {line!r}. Fix the syntax there.{hint}"
    )


def short(value) -> str:
    """repr(value), cut short: a config value may be a huge or deeply nested structure."""
    cut = reprlib.Repr()  # Python 3.11's takes no keyword arguments
    cut.maxstring, cut.maxother, cut.maxlevel = 80, 80, 3
    return cut.repr(value)


def type_words(hint) -> str:
    target = next((arg for arg in typing.get_args(hint) if arg is not type(None)), hint)
    words = {int: "a whole number", float: "a number", bool: "true or false", str: "a string"}
    return words.get(
        target, "a list of strings" if typing.get_origin(target) is list else str(hint)
    )


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
