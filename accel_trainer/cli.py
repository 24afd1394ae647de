"""`accel-trainer COMMAND`: parse options (config file, then flags) and run the command."""

from __future__ import annotations

import argparse
import logging
import os
import re
import shlex
import sys
import types
import typing
from collections.abc import Iterable
from dataclasses import fields

from accel_trainer.config import (
    EvalConfig,
    Option,
    PredictConfig,
    TrainConfig,
    did_you_mean,
    did_you_mean_option,
    group_fields,
    options_class,
    problems_error,
    registered_task_options,
)
from accel_trainer.config.files import (
    CONFIG_SUFFIXES,
    flag_options,
    read_config_file,
    split_config_path,
)
from accel_trainer.errors import (
    EXIT_DIVERGED,
    EXIT_PREEMPTED,
    ConfigError,
    Diverged,
    InputError,
    PeerLost,
    Preempted,
    RunComplete,
    compile_failure,
)

COMMANDS = {
    "train": (TrainConfig, "Fine-tune a model; with no data options, on the built-in demo corpus."),
    "evaluate": (EvalConfig, "Score a saved model on a labelled file."),
    "predict": (PredictConfig, "Label a file with a saved model; output in input order."),
}
logger = logging.getLogger("accel_trainer")
USAGE = """usage: accel-trainer {train,evaluate,predict} [CONFIG_FILE] [--option value ...]
       accel-trainer plot OUTPUT_DIR [--output_file FILE.png]

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
        report_error(unknown_command(command))
        return 2
    logging.basicConfig(
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        datefmt="%H:%M:%S",
        level=logging.INFO,
    )
    try:
        config = parse_config(COMMANDS[command][0], command, args)
        from accel_trainer import commands

        getattr(commands, command)(config)
    except InputError as error:
        report_error(str(error))
        from accel_trainer.runtime import leave_process_group

        leave_process_group()
        return 2
    except RunComplete as done:
        if os.environ.get("LOCAL_RANK", "0") == "0":
            print(f"accel-trainer: {done}", file=sys.stderr)
        from accel_trainer.runtime import leave_process_group

        leave_process_group()
        return 0
    except Preempted as error:
        report_error(f"{error}. Resume with --resume_from_checkpoint auto.")
        return ended(EXIT_PREEMPTED)
    except Diverged as error:
        report_error(str(error))
        return ended(EXIT_DIVERGED)
    except PeerLost as error:
        # From every process: the first one of this machine may be the one that was lost.
        report_error(f"process {os.environ.get('RANK', '0')}: {error}", every_process=True)
        return ended(1)
    except Exception as error:
        message = compile_failure(error)
        if message is None:
            raise
        report_error(message)
        return ended(1)
    return 0


def unknown_command(command: str) -> str:
    """The error for a first argument that is no command, with the closest one."""
    names = [*COMMANDS, "plot"]
    listed = ", ".join(names)
    if command.startswith("-"):
        return (
            f"the command must come first: got {command!r}. Use one of {listed}, e.g. "
            f"`accel-trainer train {command} ...`."
        )
    return f"unknown command: got {command!r}.{did_you_mean(command, names)} Use one of {listed}."


def ended(status: int) -> int:
    """The status of a training run that stopped early. In a multi-process run, exit here,
    while the exception still holds the trainer: freeing DDP's reducer can deadlock in gloo's
    destructor (see runtime.exit_distributed_run). The processes may be in different places,
    so no barrier."""
    from accel_trainer.runtime import exit_distributed_run

    exit_distributed_run(status, wait_for_all=False)
    return status


def plot_command(args: list[str]) -> int:
    """`accel-trainer plot OUTPUT_DIR [--output_file FILE]`."""
    parser = one_line_errors(argparse.ArgumentParser, "plot")(
        prog="accel-trainer plot",
        description="Draw the loss, learning rate and eval metrics of a training run as a PNG.",
        allow_abbrev=False,
    )
    parser.add_argument(
        "output_dir", metavar="OUTPUT_DIR", help="the --output_dir of an accel-trainer train run"
    )
    parser.add_argument(
        "--output_file", help="image to write (default: OUTPUT_DIR/training_curves.png)"
    )
    parser.add_argument(
        "--overwrite_output_file",
        action="store_true",
        help="replace a file (or a link) there that is not an unchanged earlier plot",
    )
    from accel_trainer.plot import plot

    try:
        options, rest = parser.parse_known_args(underscored(args))
        if rest:
            known = ["output_file", "overwrite_output_file"]
            raise problems_error(leftover_problems(rest, known, "plot"))
        path = plot(options.output_dir, options.output_file, options.overwrite_output_file)
    except InputError as error:
        report_error(str(error))
        return 2
    print(f"Wrote {path}")
    return 0


def report_error(message: str, every_process: bool = False) -> None:
    """One line on stderr, from the first process of each machine when several were launched."""
    if every_process or os.environ.get("LOCAL_RANK", "0") == "0":
        print(f"accel-trainer: error: {message}", file=sys.stderr)


def parse_config(config_class: type, command: str, args: list[str]):
    """Options from an optional YAML/JSON file, overridden by command-line flags."""
    config_path, flags = split_config_path(args)
    flags = underscored(flags)
    values = {} if config_path is None else read_config_file(config_path, config_class, command)
    for flag, count in repeated_flags(flags, config_class).items():
        logger.warning("--%s is given %d times on the command line: the last one wins", flag, count)
    given, rest = build_parser(config_class, command).parse_known_args(flags)
    if rest:
        raise problems_error(leftover_problems(rest, flag_options(config_class), command))
    values.update(vars(given))  # the flags win over the file
    values["config"] = config_path
    values["command_line"] = shlex.join(["accel-trainer", command, *args])  # for the model card
    return config_class.from_options(**values)


def underscored(args: list[str]) -> list[str]:
    """Flags spelled with dashes (--max-seq-length) as their option is named (--max_seq_length)."""
    spelled, rest = [], list(args)
    while rest and rest[0] != "--":
        arg = rest.pop(0)
        if arg.startswith("--"):
            flag, equals, value = arg.partition("=")
            arg = "--" + flag[2:].replace("-", "_") + equals + value
        spelled.append(arg)
    return spelled + rest


def option_sections(config_class: type) -> list[tuple[str, list[Option]]]:
    """The flags of `config_class` in help order: top level, each group, each task's options."""
    table = flag_options(config_class)
    sections = [(config_class.top_title, [o for o in table.values() if o.group is None])]
    for name, group_class in group_fields(config_class).items():
        owned = [o for o in table.values() if o.group == name]
        sections.append((group_class.title, sorted(owned, key=inheritance_depth)))
    if config_class is TrainConfig:
        for task, options in registered_task_options().items():
            owned = [o for o in table.values() if o.group == "task_options" and o.owner is options]
            sections.append((f"{task} options", owned))
    return [(title, options) for title, options in sections if options]


def options_reference() -> str:
    """docs/options.md: the options of train, evaluate and predict as their --help shows them
    (regenerate with `python -m accel_trainer.cli > docs/options.md`)."""
    parts = [
        "# Options",
        "",
        "Generated from the option dataclasses, as `accel-trainer COMMAND --help` shows them "
        "(`python -m accel_trainer.cli > docs/options.md`; a test fails when the two differ). "
        "Flags accept `--snake_case` and `--kebab-case`; a YAML or JSON file can hold any of them "
        "(`accel-trainer train run.yaml --learning_rate 3e-5`), and flags override the file.",
    ]
    for command, (config_class, description) in COMMANDS.items():
        parts += ["", f"## accel-trainer {command}", "", description]
        for title, options in option_sections(config_class):
            parts += ["", f"### {title}", "", "| option | meaning |", "|---|---|"]
            for option in options:
                keywords = argument_options(option)
                meaning = keywords["help"].replace("%%", "%")
                if keywords.get("choices"):
                    meaning += f" Choices: {', '.join(map(str, keywords['choices']))}."
                for character in "|<":  # a table cell, not HTML
                    meaning = meaning.replace(character, "\\" + character)
                parts.append(f"| `--{option.name}` | {meaning} |")
    return "\n".join(parts) + "\n"


def inheritance_depth(option: Option) -> int:
    """0 for a field the group declares itself, 1 for one of its base, ...: help lists the
    specific options first (--train_file before --data_format)."""
    owners = option.owner.__mro__
    return next(
        i for i, cls in enumerate(owners) if option.name in vars(cls).get("__annotations__", {})
    )


def build_parser(config_class: type, command: str) -> argparse.ArgumentParser:
    """An argparse parser of `config_class`'s flags, in groups; flags not given are left out."""
    parser = one_line_errors(argparse.ArgumentParser, command)(
        prog=f"accel-trainer {command}",
        usage=f"accel-trainer {command} [CONFIG_FILE] [--option value ...]",
        description=COMMANDS[command][1],
        formatter_class=FlagHelpFormatter,
        argument_default=argparse.SUPPRESS,
        allow_abbrev=False,  # a misspelt flag is an error, never another option
    )
    for title, options in option_sections(config_class):
        group = parser.add_argument_group(title)
        for option in options:
            group.add_argument(f"--{option.name}", **argument_options(option))
    return parser


def argument_options(option: Option) -> dict:
    """add_argument's keywords for one option: its type, choices, help and shown default."""
    hint = without_none(option.hint)
    metadata = task_field(option).metadata
    default = option_default(option)
    shown = "" if default is None else f" (default: {default})"
    keywords = {"help": (metadata.get("help", "") + shown).replace("%", "%%")}
    if hint is bool:
        keywords["action"] = FlagAction
    elif typing.get_origin(hint) is list:
        keywords.update(nargs="+", type=str)
    else:
        keywords["type"] = hint
    choices = metadata.get("choices")
    if option.name == "task" and option.group is None:
        from accel_trainer.tasks.registry import task_names

        choices = task_names()
    if choices:
        keywords["choices"] = choices
    return keywords


def task_field(option: Option):
    """The field that describes `option`: a task's own, for an override of a task option."""
    task = option.field.metadata.get("task")
    if task is None:
        return option.field
    owned = {field.name: field for field in fields(options_class(task))}
    return owned[option.name]


def option_default(option: Option):
    """The default value of `option`, as help shows it."""
    if option.field.metadata.get("task"):
        return "the trained model's"  # an override of a task option
    value = getattr(option.owner(), option.name)
    return None if value is False else value


def without_none(hint):
    """X for X | None."""
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return next(arg for arg in typing.get_args(hint) if arg is not type(None))
    return hint


def truth_value(text: str) -> bool:
    """`--flag true` / `--flag no`: the spellings a flag's optional value may take."""
    word = text.lower()
    if word in ("true", "yes", "t", "y", "1"):
        return True
    if word in ("false", "no", "f", "n", "0"):
        return False
    raise argparse.ArgumentTypeError(f"true or false expected: got {text}")


class FlagAction(argparse.Action):
    """A boolean flag: `--name` alone is true; `--name false` is accepted too."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs="?", const=True, type=truth_value, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, values)


class FlagHelpFormatter(argparse.HelpFormatter):
    """Help that shows boolean flags as `--name`, without a value."""

    def _format_action_invocation(self, action):
        if isinstance(action, FlagAction):
            return ", ".join(action.option_strings)
        return super()._format_action_invocation(action)


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
    (
        r"argument (\S+): expected one argument",
        "{0} needs a value: got none. A value that starts with '-' goes after '=': {0}=VALUE.",
    ),
    (r"argument (\S+): expected at least one argument", "{} needs at least one value: got none."),
    (r"argument (\S+): true or false expected: got (.*)", "{} must be true or false: got {!r}."),
    (
        r"argument (\S+): invalid choice: (\S+) \(choose from (.*)\)",
        "{0} is not one of {2}: got {1}.",
    ),
    (r"the following arguments are required: (.*)", "{} is missing: got none."),
    (r"argument -h/--help: ignored explicit argument (.*)", "--help takes no value: got {}."),
]


def argparse_problem(message: str) -> str:
    """An argparse error in our format: `--seed must be a whole number: got '1.5'.`"""
    for pattern, text in ARGPARSE_PROBLEMS:
        match = re.fullmatch(pattern, message)
        if match:
            first, *others = match.groups()
            problem = text.format(first.split("/")[0], *others)
            if "invalid choice" in pattern:  # the closest choice, e.g. cosine for cosin
                choices = re.findall(r"'([^']*)'", others[1])
                problem += did_you_mean(others[0].strip("'"), choices)
            return problem
    return message.removeprefix("argument ").rstrip(".") + "."


def repeated_flags(args: list[str], config_class: type) -> dict[str, int]:
    """Options given more than once (argparse keeps the last silently), with their counts."""
    names = set(flag_options(config_class))
    counts: dict[str, int] = {}
    for arg in args:
        if arg == "--":
            break
        flag = arg.split("=", 1)[0]
        if not flag.startswith("--"):
            continue
        name = flag[2:]
        if name in names:
            counts[name] = counts.get(name, 0) + 1
    return {name: count for name, count in counts.items() if count > 1}


def leftover_problems(rest: list[str], known: Iterable[str], command: str) -> list[str]:
    """One message per argument that is no option of `command`, whose flags are `known`
    (their values are skipped), and one for all stray arguments."""
    known = list(known)
    found, strays = [], []
    for index, arg in enumerate(rest):
        if arg == "--":  # argparse's end of options: what follows is no option here
            strays += rest[index:]
            break
        if arg.startswith("-") and not looks_like_number(arg):
            flag = arg.split("=", 1)[0]
            found.append(
                f"{flag} is not an option of accel-trainer {command}: got {arg!r}."
                f"{did_you_mean_option(flag, known, '--')} See `accel-trainer {command} --help`."
            )
            continue
        after_unknown = (
            index > 0 and rest[index - 1].startswith("--") and "=" not in rest[index - 1]
        )
        if not after_unknown:  # else the value of the unknown option before it
            strays.append(arg)
    if strays:
        if command == "plot":
            where = "Give one OUTPUT_DIR, and the PNG as --output_file FILE."
        elif any(stray.lower().endswith(CONFIG_SUFFIXES) for stray in strays):
            where = "A config file goes first, right after the command."
        else:
            where = "Give options as --name value."
        plural = "s" if len(strays) > 1 else ""
        found.append(f"unexpected argument{plural}: got {', '.join(map(repr, strays))}. {where}")
    return found


def looks_like_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


if __name__ == "__main__":
    print(options_reference(), end="")
