"""Rewrite flat config accesses (config.learning_rate) as grouped ones (config.optim.learning_rate).

Usage: python tools/regroup_config_access.py [--check] [--receiver NAME ...] FILE ...

The table comes from accel_trainer.config's dataclasses, so run it with the package that has the
groups on PYTHONPATH. It also turns `TrainConfig(` / `EvalConfig(` / `PredictConfig(` calls into
`.from_options(` calls (not those already given groups, nor text in strings), and lists what it
cannot rewrite (getattr with a literal option name, dataclasses.replace/asdict of a config,
imports of names config.py no longer has). Accesses are matched as text, so docstrings and
messages that name `config.<option>` are rewritten too. Running it twice changes nothing the
second time. --check: change no file; exit 1 if one would change. --receiver adds a name that
holds a config besides config, self.config and run_config (e.g. --receiver trainer.config).
"""

from __future__ import annotations

import argparse
import ast
import inspect
import re
import sys
from dataclasses import fields

from accel_trainer import config as config_module

RECEIVERS = ("self.config", "config", "run_config")
CONFIG_CLASSES = ("TrainConfig", "EvalConfig", "PredictConfig")
# Names config.py had before the groups, and where they live now.
MOVED_NAMES = {
    "RunConfig": "gone: use TrainConfig/EvalConfig/PredictConfig and their groups",
    "DataConfig": "gone: use EvalConfig (or EvalDataOptions, the group)",
    "TASKS": "accel_trainer.tasks.registry.task_names()",
    "TAG_SCHEMES": "accel_trainer.tasks.ner",
    "DEFAULT_MARKERS": "accel_trainer.tasks.re",
    "RESERVED_MARKERS": "accel_trainer.tasks.re",
    "choice_problems": "accel_trainer.config (now takes any options dataclass)",
}


def group_methods(group_class: type, config_classes: list[type]) -> list[str]:
    """Public methods and properties of a group that no config class has itself."""
    on_configs = set().union(*(dir(cls) for cls in config_classes))
    own = {option.name for option in fields(group_class)}
    return [
        name
        for name, _ in inspect.getmembers(group_class)
        if not name.startswith("_")
        and name not in own
        and name not in on_configs
        and name not in dir(config_module.OptionGroup)
        and name not in ("problems", "title")
    ]


def access_table() -> dict[str, str]:
    """Flat option (or group method) name -> the config attribute holding it."""
    config_classes = [getattr(config_module, name) for name in CONFIG_CLASSES]
    table: dict[str, str] = {}
    for config_class in config_classes:
        holders = dict(config_module.group_fields(config_class))
        for options in config_class.task_option_classes():
            holders.setdefault("task_options", options)
            for name in group_methods(options, config_classes):
                add(table, name, "task_options")
        for name, option in config_class.option_table().items():
            if option.group is not None:
                add(table, name, option.group)
        for group, group_class in holders.items():
            for name in group_methods(group_class, config_classes):
                add(table, name, group)
    return table


def add(table: dict[str, str], name: str, group: str) -> None:
    if table.setdefault(name, group) != group:
        raise SystemExit(f"{name} is in two groups: {table[name]} and {group}; fix the table")


def access_pattern(receivers: list[str]) -> re.Pattern:
    # Not after a word character or a dot: `model.config.x` is not ours.
    alternatives = "|".join(re.escape(r) for r in sorted(receivers, key=len, reverse=True))
    return re.compile(rf"(?<![\w.])(?P<receiver>{alternatives})\.(?P<name>[A-Za-z_]\w*)\b")


def rewrite(text: str, table: dict[str, str], pattern: re.Pattern) -> str:
    """`text` with grouped accesses and from_options constructor calls."""

    def grouped(match: re.Match) -> str:
        group = table.get(match["name"])
        if group is None:
            return match[0]
        return f"{match['receiver']}.{group}.{match['name']}"

    return from_options_calls(pattern.sub(grouped, text), set(table.values()))


def from_options_calls(text: str, groups: set[str]) -> str:
    """`TrainConfig(` calls as `TrainConfig.from_options(`, except those given groups
    (`TrainConfig(data=DataOptions(...))`), which are already the grouped form."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return text  # moved_imports reports the file
    spots = [
        (node.func.end_lineno, node.func.end_col_offset)
        for node in ast.walk(tree)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Name)
        and node.func.id in CONFIG_CLASSES
        and not any(keyword.arg in groups for keyword in node.keywords)
    ]
    lines = text.splitlines(keepends=True)
    for number, column in sorted(spots, reverse=True):
        line = lines[number - 1].encode()  # ast columns count UTF-8 bytes
        lines[number - 1] = (line[:column] + b".from_options" + line[column:]).decode()
    return "".join(lines)


def leftovers(path: str, text: str, table: dict[str, str], receivers: list[str]) -> list[str]:
    """What the rewrite cannot do, as `path:line: what`, for a person to fix."""
    names = "|".join(sorted(table))
    alternatives = "|".join(re.escape(r) for r in receivers)
    checks = [
        (
            rf"\b(getattr|setattr|hasattr)\(\s*({alternatives})\s*,\s*[\"']({names})[\"']",
            "an option by its flat name through {0}(): use the group attribute",
        ),
        (
            rf"\b(replace|asdict)\(\s*({alternatives})\b",
            "dataclasses.{0}() of a config: its groups are nested now; use to_dict() or "
            "from_options(**{{**config.to_dict(), ...}})",
        ),
        (
            r"\bfields\((TrainConfig|EvalConfig|PredictConfig|RunConfig|DataConfig)\b",
            "fields({0}) lists groups now, not options: use {0}.option_table()",
        ),
        (
            r"\bcheckpointing_steps(\s*[=!]=\s*[\"']|\.is\w+\(|\.isdigit)",
            "checkpointing_steps is a CheckpointEvery now, not a string: use its .steps, .epoch "
            "or .never",
        ),
    ]
    found = []
    for number, line in enumerate(text.splitlines(), 1):
        for check, message in checks:
            for match in re.finditer(check, line):
                found.append(f"{path}:{number}: " + message.format(*match.groups()))
    return found + moved_imports(path, text)


def moved_imports(path: str, text: str) -> list[str]:
    """Imports from accel_trainer.config of names it no longer has."""
    try:
        tree = ast.parse(text)
    except SyntaxError:
        return [f"{path}: not Python, imports not checked"]
    return [
        f"{path}:{node.lineno}: {alias.name} is no longer in accel_trainer.config: "
        f"{MOVED_NAMES[alias.name]}"
        for node in ast.walk(tree)
        if isinstance(node, ast.ImportFrom) and node.module == "accel_trainer.config"
        for alias in node.names
        if alias.name in MOVED_NAMES
    ]


def main(argv: list[str] | None = None) -> int:
    """Rewrite the given files in place; print what needs a person; 1 if --check finds work."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("files", nargs="+")
    parser.add_argument("--check", action="store_true", help="change nothing; exit 1 if needed")
    parser.add_argument("--receiver", action="append", default=[], help="another config name")
    options = parser.parse_args(argv)
    receivers = [*RECEIVERS, *options.receiver]
    table, pattern = access_table(), access_pattern(receivers)
    changed = []
    for path in options.files:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
        new = rewrite(text, table, pattern)
        for line in leftovers(path, new, table, receivers):
            print(line, file=sys.stderr)
        if new != text:
            changed.append(path)
            if not options.check:
                with open(path, "w", encoding="utf-8") as handle:
                    handle.write(new)
    verb = "would change" if options.check else "changed"
    print(f"{verb} {len(changed)} file(s): {' '.join(changed)}")
    return 1 if options.check and changed else 0


if __name__ == "__main__":
    sys.exit(main())
