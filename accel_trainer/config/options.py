"""Flat option names <-> grouped configs: the table of every option a config accepts, building
a config from flat names (CLI, config files, Python) and flattening it back."""

from __future__ import annotations

import reprlib
import types
import typing
from dataclasses import dataclass, fields
from typing import Any, ClassVar

from accel_trainer.config.checks import (
    INTERNAL,
    choice_problems,
    did_you_mean_option,
    problems_error,
)


class OptionGroup:
    """A group of related options that checks its own values; each lives beside the component
    that reads it (e.g. train/batching_options.py)."""

    title: ClassVar[str]

    def problems(self) -> list[str]:
        """Every invalid option of the group, as one message each."""
        return choice_problems(self)


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
    """Convert an option's value (from Python, a flag or a config file: YAML reads 5e-5 as a
    string, for one) to the field's type; TypeError or ValueError when it is not one."""
    optional = typing.get_origin(hint) in (typing.Union, types.UnionType)  # X | None
    if value is None:
        if optional:
            return None
        raise TypeError(value)
    target = hint
    if optional:
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
        if target is int and isinstance(value, int):
            return int(value)  # exactly, however large: the limits are problems()'
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


def group_fields(config_class: type) -> dict[str, type]:
    """The option groups of a config class: attribute name -> group class."""
    hints = typing.get_type_hints(config_class)
    return {
        option.name: hints[option.name]
        for option in fields(config_class)
        if isinstance(hints[option.name], type) and issubclass(hints[option.name], OptionGroup)
    }


@dataclass(frozen=True)
class Option:
    """One flat option: where it lives in a config, its field, and its command-line type."""

    name: str
    group: str | None  # the config attribute holding it; None at the top level
    field: Any  # dataclasses.Field
    hint: Any  # the type a flag or config file value is converted to
    owner: type  # the dataclass declaring it

    @property
    def is_flag(self) -> bool:
        return self.field.metadata.get("kind") is None


def class_options(owner: type, group: str | None) -> dict[str, Option]:
    """The options a dataclass declares, skipping groups and internal fields."""
    hints = typing.get_type_hints(owner)
    found = {}
    for option in fields(owner):
        hint = hints[option.name]
        is_group = option.name == "task_options" or (
            isinstance(hint, type) and issubclass(hint, OptionGroup)
        )
        if is_group or option.metadata.get("kind") == INTERNAL:
            continue
        text_type = option.metadata.get("text_type")
        found[option.name] = Option(option.name, group, option, str if text_type else hint, owner)
    return found


def typed_value(value, hint, text_type=None):
    """An option's value converted to its field's type (a typed value such as CheckpointEvery
    from its text)."""
    if text_type is not None and isinstance(value, text_type):
        return value
    if text_type is not None and isinstance(value, int) and not isinstance(value, bool):
        value = str(value)  # checkpointing_steps=10 from Python
    value = coerce(value, hint)
    return text_type(value) if text_type is not None and value is not None else value


class FromOptions:
    """Builds a config from flat option names; flattens it back with to_dict()."""

    top_title: ClassVar[str]

    @classmethod
    def option_table(cls) -> dict[str, Option]:
        """Flat option name -> Option, for every option this config accepts."""
        return cls.options_with(cls.task_option_classes())

    @classmethod
    def options_with(cls, task_option_classes: list[type]) -> dict[str, Option]:
        """Flat option name -> Option: top level, groups, then these task options classes."""
        table = class_options(cls, None)
        for name, group_class in group_fields(cls).items():
            table.update(class_options(group_class, name))
        for options in task_option_classes:
            for name, option in class_options(options, "task_options").items():
                table.setdefault(name, option)  # a name two tasks share: one flag for both
        return table

    @classmethod
    def task_option_classes(cls) -> list[type]:
        """The task options classes whose fields this config accepts, beyond its groups."""
        return []

    def own_task_option_classes(self) -> list[type]:
        """The task options classes this config holds values of."""
        return []

    @classmethod
    def from_options(cls, **flat):
        """The config of these flat options (CLI, config file or Python); ConfigError on names
        that are no option."""
        table = cls.option_table()
        unknown = [name for name in flat if name not in table]
        if unknown:
            raise problems_error(
                [
                    f"{cls.__name__} has no option {name!r}: got {name}={flat[name]!r}."
                    f"{did_you_mean_option(name, table)}"
                    for name in unknown
                ]
            )
        group_classes = group_fields(cls)
        top: dict = {}
        grouped: dict[str, dict] = {name: {} for name in group_classes}
        task_values: dict = {}
        wrong = []
        for name, value in flat.items():
            option = table[name]
            text_type = option.field.metadata.get("text_type")
            try:
                value = typed_value(value, option.hint, text_type)
            except (TypeError, ValueError, OverflowError):  # OverflowError: int(inf)
                wrong.append(
                    f"--{name} has the wrong type: got {short(value)}, expected "
                    f"{type_words(option.hint)}."
                )
                continue
            if option.group is None:
                top[name] = value
            elif option.group in group_classes:
                grouped[option.group][name] = value
            else:
                task_values[name] = value
        if wrong:
            raise problems_error(wrong)
        groups = {name: group_classes[name](**values) for name, values in grouped.items()}
        return cls.build(top, groups, task_values)

    @classmethod
    def build(cls, top: dict, groups: dict, task_values: dict):
        """The config of its top-level values, built groups and task option values."""
        return cls(**top, **groups)

    def to_dict(self) -> dict:
        """Every option by its flat name (typed values as the user spelled them)."""
        flat = {}
        for option in self.options_with(self.own_task_option_classes()).values():
            if option.is_flag:
                holder = self if option.group is None else getattr(self, option.group)
                value = getattr(holder, option.name)
                typed = option.field.metadata.get("text_type") and value is not None
                flat[option.name] = str(value) if typed else value
        return flat
