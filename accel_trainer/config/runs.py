"""The configs of the commands (TrainConfig, EvalConfig, PredictConfig): which groups each
holds, the checks across groups, and validate()."""

from __future__ import annotations

import os
from dataclasses import dataclass, field, fields
from typing import Any, ClassVar

from accel_trainer.config.checks import (
    DECLARED,
    INTERNAL,
    TINY_BERT,
    adapter_only_problems,
    blank_problem,
    choice_problems,
    data_file_problems,
    demo_output_dir,
    did_you_mean,
    is_blank,
    known_data_formats,
    model_problems,
    opt,
    options_class,
    output_dir_problems,
    problems_error,
    registered_task_options,
    saved_model_problems,
    sequence_length_problems,
    task_options_base,
)
from accel_trainer.config.options import FromOptions, OptionGroup, group_fields
from accel_trainer.data_options import DataOptions, EvalDataOptions, InputOptions
from accel_trainer.errors import ConfigError
from accel_trainer.lora_options import PeftOptions
from accel_trainer.runtime_options import ComputeOptions, RuntimeOptions
from accel_trainer.train.batching_options import (
    BatchingOptions,
    EvalBatchingOptions,
    token_budget_problem,
)
from accel_trainer.train.checkpointer_options import CheckpointOptions
from accel_trainer.train.evaluation_options import EvalOptions
from accel_trainer.train.optim_options import OptimOptions
from accel_trainer.train.run_log_options import LoggingOptions


@dataclass
class TrainConfig(FromOptions):
    """Options of `accel-trainer train`."""

    top_title: ClassVar[str] = "task and model"

    task: str = field(
        default="ner",
        metadata=opt(
            "The task, by its registered name: ner (token classification), re "
            "(relation classification), or one you registered."
        ),
    )
    model_name_or_path: str = field(
        default=TINY_BERT,
        metadata=opt(
            "Hub model name or local folder. 'tiny-bert' builds a small randomly initialised "
            "BERT and a WordPiece tokenizer from the training data (no download)."
        ),
    )
    output_dir: str | None = field(
        default=None,
        metadata=opt(
            "Where results go. Train: required with your own data (outputs/demo-TASK for the "
            "demo).",
            on_resume="free",
        ),
    )
    overwrite_output_dir: bool = field(
        default=False,
        metadata=opt("Replace a model that already is in --output_dir.", on_resume="free"),
    )
    config: str | None = field(
        default=None,
        metadata=opt(
            "YAML or JSON file of options; flags on the command line override it.",
            on_resume="free",
        ),
    )
    command_line: str | None = field(
        default=None, metadata={"kind": DECLARED, "help": "The command that started the run."}
    )
    data: DataOptions = field(default_factory=DataOptions)
    batching: BatchingOptions = field(default_factory=BatchingOptions)
    optim: OptimOptions = field(default_factory=OptimOptions)
    checkpointing: CheckpointOptions = field(default_factory=CheckpointOptions)
    evaluation: EvalOptions = field(default_factory=EvalOptions)
    logging: LoggingOptions = field(default_factory=LoggingOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    compute: ComputeOptions = field(default_factory=ComputeOptions)
    peft: PeftOptions = field(default_factory=PeftOptions)
    task_options: Any = None  # a TaskOptions: the task's options_class; its defaults when None
    # Flat options of another task than --task: refused by problems(), all at once.
    other_task_options: dict = field(default_factory=dict, repr=False, metadata={"kind": INTERNAL})

    def __post_init__(self):
        if self.task_options is None:
            try:
                self.task_options = options_class(self.task)()
            except ConfigError:  # an unknown --task, which problems() reports
                self.task_options = task_options_base()()

    @classmethod
    def task_option_classes(cls) -> list[type]:
        return list(registered_task_options().values())

    def own_task_option_classes(self) -> list[type]:
        return [type(self.task_options)]

    @classmethod
    def build(cls, top: dict, groups: dict, task_values: dict):
        task = top.get("task", cls.task)
        try:
            own_class = options_class(task)
        except ConfigError:  # an unknown --task, which problems() reports
            own_class = task_options_base()
        own = {option.name for option in fields(own_class)}
        options = own_class(**{name: v for name, v in task_values.items() if name in own})
        others = {name: v for name, v in task_values.items() if name not in own}
        return cls(**top, **groups, task_options=options, other_task_options=others)

    @property
    def is_demo(self) -> bool:
        """No data given: train on the built-in demo corpus."""
        return self.data.is_demo

    @property
    def is_tiny_bert(self) -> bool:
        return self.model_name_or_path == TINY_BERT

    def resolved_learning_rate(self) -> float:
        if self.optim.learning_rate is not None:
            return self.optim.learning_rate
        return 1e-3 if self.is_tiny_bert else 5e-5

    def resolved_output_dir(self) -> str:
        # `is None`, not `or`: an empty --output_dir is refused, never taken for the demo's.
        return demo_output_dir(self.task) if self.output_dir is None else self.output_dir

    def effective_options(self) -> dict:
        """Every option by its flat name as the run uses it: the learning rate resolved for the
        model, the output folder the demo's when none is given (training_config.json)."""
        return {
            **self.to_dict(),
            "learning_rate": self.resolved_learning_rate(),
            "output_dir": self.resolved_output_dir(),
        }

    def problems(self) -> list[str]:
        """Every invalid option of every group, and of options that depend on each other."""
        found = self.task_problems() + model_problems(self.model_name_or_path)
        found += adapter_only_problems(self.model_name_or_path)
        for name in group_fields(type(self)):
            found += getattr(self, name).problems()
        found += choice_problems(self.task_options) + self.task_options.problems()
        found += sequence_length_problems(self.model_name_or_path, self.data.max_seq_length)
        found += output_dir_problems(self.output_dir)
        found += self.other_task_problems()
        if self.peft.uses_lora and self.peft.save_adapter_only and self.is_tiny_bert:
            found.append(
                "--save_adapter_only needs a pretrained --model_name_or_path: got tiny-bert, whose "
                "random base weights no one can load the adapter onto later. Give a hub model or "
                "a model folder, or leave out --save_adapter_only to save merged weights."
            )
        if self.batching.max_tokens_per_batch > 0 and self.checkpointing.allow_topology_change:
            found.append(token_budget_problem("allow_topology_change"))
        if not self.is_demo and self.data.train_file is None and self.data.dataset_name is None:
            found.append(
                "--train_file is missing: got only --validation_file. Give --train_file too, or "
                "neither for the demo."
            )
        evaluation = self.evaluation
        watches = evaluation.metric_for_best_model or evaluation.load_best_model_at_end
        has_eval_data = self.data.validation_file is not None or self.data.dataset_name is not None
        if watches and not (self.is_demo or has_eval_data):
            found.append(
                "--metric_for_best_model needs evaluation data: got no --validation_file (or "
                "--dataset_name). Give one, or leave out --metric_for_best_model, "
                "--load_best_model_at_end and --early_stopping_patience."
            )
        if not self.is_demo and self.output_dir is None:
            found.append(
                "--output_dir is missing: it is required with your own data. "
                "Name a folder for the model and results."
            )
        return found

    def task_problems(self) -> list[str]:
        """--task unknown, or its options an instance of another task's class."""
        try:
            expected = options_class(self.task)
        except ConfigError:
            from accel_trainer.tasks.registry import task_names

            names = task_names()
            return [
                f"--task is not one of {names}: got {self.task!r}."
                f"{did_you_mean(str(self.task), names)}"
            ]
        if not isinstance(self.task_options, expected):
            return [
                f"task_options is not the options of --task {self.task}: got "
                f"{type(self.task_options).__name__}. Give a {expected.__name__}, or none."
            ]
        from accel_trainer.tasks.registry import get_task

        formats = list(get_task(self.task).data_formats)
        if self.data.data_format in known_data_formats() and self.data.data_format not in formats:
            return [
                f"--data_format is not a format of --task {self.task}: got "
                f"{self.data.data_format!r}. Use one of {formats}."
            ]
        return []

    def other_task_problems(self) -> list[str]:
        """Options of another task than --task, given other than at their default."""
        found = []
        for name, value in self.other_task_options.items():
            owners = [
                task
                for task, options in registered_task_options().items()
                if name in {option.name for option in fields(options)}
            ]
            if value != getattr(options_class(owners[0])(), name):
                found.append(
                    f"--{name} applies to --task {' or '.join(owners)} only: got --task "
                    f"{self.task}."
                )
        return found


@dataclass
class ContextOverrides(OptionGroup):
    """Options of the saved model's task that evaluate and predict accept; None: the model's
    own. Help, choices and checks come from the option of the task that metadata "task"
    names."""

    title: ClassVar[str] = "task overrides"

    document_context: int | None = field(default=None, metadata={"task": "ner"})
    documents: str | None = field(default=None, metadata={"task": "ner"})

    def given(self) -> dict[str, str]:
        """The overrides given, by option name."""
        return {
            f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name) is not None
        }

    def problems(self) -> list[str]:
        """The task's own checks of each given override."""
        found = []
        for option in fields(self):
            value = getattr(self, option.name)
            if value is not None:
                given = options_class(option.metadata["task"])(**{option.name: value})
                found += choice_problems(given) + given.problems()
        return found


@dataclass
class TaskOverrides(ContextOverrides):
    """ContextOverrides and the options of the saved model's task that only evaluate accepts."""

    tag_scheme: str | None = field(default=None, metadata={"task": "ner"})
    negative_label: str | None = field(default=None, metadata={"task": "re"})


@dataclass
class EvalConfig(FromOptions):
    """Options of `accel-trainer evaluate`: score a saved model on a labelled file."""

    top_title: ClassVar[str] = "model and output"

    model_name_or_path: str = field(
        default=TINY_BERT,
        metadata=opt("The output folder of `accel-trainer train` (or a hub model it saved)."),
    )
    output_dir: str | None = field(
        default=None,
        metadata=opt(
            "Where eval_results.json goes. Default: --model_name_or_path. An existing "
            "eval_results.json is replaced only if accel-trainer wrote it and it is unchanged."
        ),
    )
    overwrite_output_file: bool = field(
        default=False,
        metadata=opt(
            "Replace an eval_results.json (or a link) in --output_dir that is not an unchanged "
            "earlier output of accel-trainer."
        ),
    )
    config: str | None = field(
        default=None,
        metadata=opt("YAML or JSON file of options; flags on the command line override it."),
    )
    command_line: str | None = field(
        default=None, metadata={"kind": DECLARED, "help": "The command that started the run."}
    )
    data: EvalDataOptions = field(default_factory=EvalDataOptions)
    batching: EvalBatchingOptions = field(default_factory=EvalBatchingOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    task_options: TaskOverrides = field(default_factory=TaskOverrides)

    def problems(self) -> list[str]:
        """Every invalid option, as one message each."""
        found = model_problems(self.model_name_or_path)
        for name in group_fields(type(self)):
            found += getattr(self, name).problems()
        found += sequence_length_problems(self.model_name_or_path, self.data.max_seq_length)
        found += output_dir_problems(self.output_dir)
        if self.data.validation_file is None and self.data.dataset_name is None:
            found.append(
                "--validation_file is missing: evaluate needs labelled data. "
                "Give a CoNLL or JSON lines file."
            )
        return found + saved_model_problems(self.model_name_or_path, "evaluate")

    def resolved_output_dir(self) -> str:
        return self.model_name_or_path if self.output_dir is None else self.output_dir


@dataclass
class PredictConfig(FromOptions):
    """Options of `accel-trainer predict`: label new text with a saved model."""

    top_title: ClassVar[str] = "model and files"

    model_name_or_path: str = field(
        default=TINY_BERT,
        metadata=opt("The output folder of `accel-trainer train` (or a hub model it saved)."),
    )
    input_file: str | None = field(
        default=None,
        metadata=opt(
            "What to label: a file in a format of the model's task (labels not needed), or for "
            "NER raw text (plain text or JSON lines with a `text` field)."
        ),
    )
    output_file: str | None = field(
        default=None,
        metadata=opt("Where predictions go, in --output_format."),
    )
    overwrite_output_file: bool = field(
        default=False,
        metadata=opt(
            "Replace an existing --output_file (or a link there) that is not an unchanged "
            "earlier output of accel-trainer."
        ),
    )
    output_format: str = field(
        default="auto",
        metadata=opt(
            "NER: conll (word and tag lines), jsonl (the input records with ner_tags) or "
            "spans (the input records with their entities); auto: conll for CoNLL input, "
            "jsonl for JSON lines of tokens, spans for raw text. RE writes jsonl.",
            choices=["auto", "conll", "jsonl", "spans"],
        ),
    )
    text_format: str | None = field(
        default=None,
        metadata=opt(
            "Raw text input (NER): lines (one document per line, the default for plain text) "
            "or document (the whole file is one document). Implies plain text input.",
            choices=["lines", "document"],
        ),
    )
    config: str | None = field(
        default=None,
        metadata=opt("YAML or JSON file of options; flags on the command line override it."),
    )
    command_line: str | None = field(
        default=None, metadata={"kind": DECLARED, "help": "The command that started the run."}
    )
    data: InputOptions = field(default_factory=InputOptions)
    batching: EvalBatchingOptions = field(default_factory=EvalBatchingOptions)
    runtime: RuntimeOptions = field(default_factory=RuntimeOptions)
    task_options: ContextOverrides = field(default_factory=ContextOverrides)

    def problems(self) -> list[str]:
        """Every invalid option, as one message each."""
        found = model_problems(self.model_name_or_path) + choice_problems(self)
        for name in group_fields(type(self)):
            found += getattr(self, name).problems()
        found += sequence_length_problems(self.model_name_or_path, self.data.max_seq_length)
        found += data_file_problems({"input_file": self.input_file})
        return (
            found
            + self.output_file_problems()
            + self.text_format_problems()
            + saved_model_problems(self.model_name_or_path, "predict")
        )

    def text_format_problems(self) -> list[str]:
        """--text_format with input that is not plain text."""
        data_format, source = self.data.data_format, self.input_file or ""
        as_json = data_format == "jsonl" or (
            data_format == "auto" and source.lower().endswith((".json", ".jsonl"))
        )
        if self.text_format is None or not (as_json or data_format == "conll"):
            return []
        given = "JSON lines input" if as_json else "--data_format conll"
        return [
            f"--text_format is for plain text input: got --text_format {self.text_format} with "
            f"{given} ({source}). Leave it out (a JSON record's text is one document), or pass "
            "--data_format text to read the file as plain text."
        ]

    def output_file_problems(self) -> list[str]:
        found = []
        source, target = self.input_file, self.output_file
        if source is None or target is None:
            found.append(
                "--input_file and --output_file are required: predict reads one and writes the "
                "other."
            )
        if is_blank(target):
            found.append(blank_problem("output_file", target, "Name the file to write."))
        elif target is not None:
            folder = os.path.dirname(os.path.abspath(target))
            if os.path.isdir(target):
                found.append(f"--output_file is a folder: got {target!r}. Name a file.")
            elif os.path.exists(folder) and not os.path.isdir(folder):
                found.append(
                    f"--output_file is inside a file, not a folder: got {target!r}. Name another "
                    "file."
                )
            elif not os.path.isdir(folder):
                found.append(
                    f"--output_file is in a folder that does not exist: got {target!r}. Create "
                    "the folder first."
                )
            elif source and os.path.isfile(source) and os.path.exists(target):
                if os.path.samefile(source, target):
                    found.append(
                        f"--output_file is the --input_file: got {target!r} (the same file). "
                        "Write the predictions to another file; the input is never replaced."
                    )
        return found


def validate(config) -> None:
    """Raise one ConfigError that lists every invalid option."""
    found = config.problems()
    if found:
        raise problems_error(found)
