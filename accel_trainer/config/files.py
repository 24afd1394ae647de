"""Options from a YAML or JSON file (`accel-trainer train run.yaml`, or --config): read, parsed
safely, and checked against the config's flags and types, every problem in one line."""

from __future__ import annotations

import json
import os
import re
import sys
import typing

from accel_trainer.config.checks import did_you_mean_option, problems_error
from accel_trainer.config.options import Option, coerce, short, type_words
from accel_trainer.errors import ConfigError

CONFIG_SUFFIXES = (".yaml", ".yml", ".json")


def flag_options(config_class: type) -> dict[str, Option]:
    """The options of `config_class` that are flags (and config file keys), by name."""
    return {name: option for name, option in config_class.option_table().items() if option.is_flag}


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
    known = flag_options(config_class)
    hints = {name: option.hint for name, option in known.items()}
    options, keys = {}, {}
    for key, value in values.items():
        name = str(key).replace("-", "_")
        if name not in known:
            found.append(
                f"config file {path} has an unknown option: got {key!r}."
                f"{did_you_mean_option(str(key), known)} See `accel-trainer {command} --help`."
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
