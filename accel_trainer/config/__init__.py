"""Typed options of every command, in groups that each check their own values: checks.py (limits
and shared checks), groups.py (the option groups), options.py (flat names <-> groups), runs.py
(the configs of train, evaluate and predict, and validate()).

Nothing heavy is imported here, so that `accel-trainer --help` stays fast: task options are looked
up through the task registry only when a config is built.
"""

from accel_trainer.config.checks import (
    MAX_COUNT,
    MAX_SEED,
    MAX_SEQ_LENGTH,
    TINY_BERT,
    TINY_BERT_MAX_SEQ_LENGTH,
    did_you_mean,
    known_data_formats,
    options_class,
    problems_error,
    registered_task_options,
)
from accel_trainer.config.groups import (
    BatchingOptions,
    CheckpointEvery,
    CheckpointOptions,
    ComputeOptions,
    DataOptions,
    EvalBatchingOptions,
    EvalDataOptions,
    EvalOptions,
    InputOptions,
    LoggingOptions,
    OptimOptions,
    OptionGroup,
    PeftOptions,
    RuntimeOptions,
    TaskOverrides,
)
from accel_trainer.config.options import FromOptions, Option, group_fields
from accel_trainer.config.runs import EvalConfig, PredictConfig, TrainConfig, validate

__all__ = [
    "MAX_COUNT",
    "MAX_SEED",
    "MAX_SEQ_LENGTH",
    "TINY_BERT",
    "TINY_BERT_MAX_SEQ_LENGTH",
    "BatchingOptions",
    "CheckpointEvery",
    "CheckpointOptions",
    "ComputeOptions",
    "DataOptions",
    "EvalBatchingOptions",
    "EvalConfig",
    "EvalDataOptions",
    "EvalOptions",
    "FromOptions",
    "InputOptions",
    "LoggingOptions",
    "OptimOptions",
    "Option",
    "OptionGroup",
    "PeftOptions",
    "PredictConfig",
    "RuntimeOptions",
    "TaskOverrides",
    "TrainConfig",
    "did_you_mean",
    "group_fields",
    "known_data_formats",
    "options_class",
    "problems_error",
    "registered_task_options",
    "validate",
]
