"""The option groups (data, batching, optimisation, checkpointing, evaluation, logging,
runtime, compute, peft), each a dataclass that checks its own values in problems()."""

from __future__ import annotations

import importlib.util
import math
from dataclasses import dataclass, field, fields
from typing import ClassVar

from accel_trainer.config.checks import (
    MAX_COUNT,
    MAX_DDP_TIMEOUT,
    MAX_SEED,
    MIXED_PRECISION,
    OPTIONAL_TRACKERS,
    REPORT_TO,
    SCHEDULERS,
    _opt,
    blank_problem,
    choice_problems,
    data_file_problems,
    did_you_mean,
    is_blank,
    known_data_formats,
    options_class,
    positive_problems,
    upper_bound_problems,
)
from accel_trainer.errors import ConfigError


class OptionGroup:
    """A group of related options that checks its own values."""

    title: ClassVar[str]

    def problems(self) -> list[str]:
        """Every invalid option of the group, as one message each."""
        return choice_problems(self)


@dataclass(frozen=True)
class CheckpointEvery:
    """When to save the training state: every `steps` optimizer steps, each epoch, or never."""

    text: str = "no"
    steps: int | None = field(default=None, init=False)
    epoch: bool = field(default=False, init=False)

    def __post_init__(self):
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        if self.text.isascii() and self.text.isdigit() and int(self.text) > 0:
            object.__setattr__(self, "steps", int(self.text))
        object.__setattr__(self, "epoch", self.text == "epoch")

    @property
    def never(self) -> bool:
        return self.text == "no"

    def is_valid(self) -> bool:
        return self.steps is not None or self.text in ("no", "epoch")

    def __str__(self) -> str:
        return self.text


@dataclass
class InputOptions(OptionGroup):
    """How any data file is read and tokenized."""

    title: ClassVar[str] = "data"

    data_format: str = field(
        default="auto",
        metadata=_opt(
            "conll, jsonl, semeval2010, text (predict: raw text), or auto: .json/.jsonl are JSON "
            "lines; for NER anything else is CoNLL (predict tells CoNLL from raw text by its "
            "lines, docs/write-policy.md); for RE, files whose first line starts with a number "
            "and a tab are SemEval-2010 Task 8, others JSON lines. A registered task may read "
            "others."
        ),
    )
    max_seq_length: int = field(
        default=128,
        metadata=_opt(
            "Sub-tokens per sequence. Training truncates NER sentences (and counts them); NER "
            "evaluation and prediction use sliding windows; RE windows the text around both "
            "entities."
        ),
    )
    preprocessing_num_workers: int = field(
        default=0,
        metadata=_opt(
            "Processes that tokenize (datasets.map num_proc); 0 or 1: the main process. The "
            "result is cached under HF_DATASETS_CACHE/accel_trainer and reused by later runs."
        ),
    )
    overwrite_cache: bool = field(
        default=False, metadata=_opt("Tokenize again instead of loading the cached result.")
    )

    def problems(self) -> list[str]:
        found = super().problems()
        formats = known_data_formats()
        if self.data_format not in formats:
            found.append(
                f"--data_format is not one of {formats}: got {self.data_format!r}."
                f"{did_you_mean(str(self.data_format), formats)}"
            )
        if self.max_seq_length < 8:
            found.append(
                f"--max_seq_length must be at least 8: got {self.max_seq_length}. "
                "Use a longer length, e.g. 128."
            )
        if self.preprocessing_num_workers < 0:
            found.append(
                "--preprocessing_num_workers cannot be negative: got "
                f"{self.preprocessing_num_workers}. Use 0 to tokenize in the main process."
            )
        return found


@dataclass
class EvalDataOptions(InputOptions):
    """Labelled evaluation data: a file or a `datasets` dataset, and how it is read."""

    validation_file: str | None = field(
        default=None, metadata=_opt("Evaluation data: CoNLL or JSON lines.")
    )
    dataset_name: str | None = field(
        default=None,
        metadata=_opt("A `datasets` dataset name or local dataset folder, instead of files."),
    )
    dataset_config_name: str | None = field(
        default=None, metadata=_opt("Configuration name of --dataset_name.")
    )

    def data_files(self) -> dict[str, str | None]:
        """The data files this group names, by option name."""
        return {"validation_file": self.validation_file}

    def problems(self) -> list[str]:
        found = super().problems()
        if is_blank(self.dataset_name):
            found.append(
                blank_problem(
                    "dataset_name", self.dataset_name, "Give a dataset name, or data files."
                )
            )
        if self.dataset_config_name is not None and self.dataset_name is None:
            found.append(
                "--dataset_config_name needs --dataset_name: got only "
                f"--dataset_config_name {self.dataset_config_name!r}. Give the dataset too, or "
                "leave it out."
            )
        for option, path in self.data_files().items():
            if path is not None and self.dataset_name is not None:
                found.append(
                    f"--{option} and --dataset_name are mutually exclusive: got both. Give data "
                    "files or a dataset name."
                )
        return found + data_file_problems(self.data_files())


@dataclass
class DataOptions(EvalDataOptions):
    """Training and evaluation data, labels, and how they are read."""

    train_file: str | None = field(
        default=None,
        metadata=_opt(
            "Training data: CoNLL or JSON lines. Omit it (and all data options) for "
            "the built-in demo corpus."
        ),
    )
    label_names: list[str] | None = field(
        default=None,
        metadata=_opt("The label list, in order. Default: the sorted tags of the training data."),
    )

    def data_files(self) -> dict[str, str | None]:
        return {"train_file": self.train_file, "validation_file": self.validation_file}

    def problems(self) -> list[str]:
        found = super().problems()
        labels = self.label_names
        if labels is not None and not labels:
            found.append(
                "--label_names is empty: got []. List the labels, or leave the option out to take "
                "them from the training data."
            )
        elif labels is not None and not all(label.strip() for label in labels):
            found.append(f"--label_names has an empty label: got {labels}. Give each label a name.")
        elif labels is not None and len(set(labels)) != len(labels):
            found.append(f"--label_names has duplicates: got {labels}. List each once.")
        return found

    @property
    def is_demo(self) -> bool:
        """No data given: train on the built-in demo corpus."""
        return self.train_file is None and self.validation_file is None and not self.dataset_name


@dataclass
class EvalBatchingOptions(OptionGroup):
    """How many examples an evaluation batch holds."""

    title: ClassVar[str] = "batching"

    per_device_eval_batch_size: int = field(default=32, metadata=_opt("Eval batch per process."))

    def problems(self) -> list[str]:
        found = super().problems()
        if self.per_device_eval_batch_size <= 0:
            found.append(
                "--per_device_eval_batch_size must be positive: "
                f"got {self.per_device_eval_batch_size}. Use e.g. 32."
            )
        return found + upper_bound_problems(self, {"per_device_eval_batch_size": MAX_COUNT})


LOSS_NORMALIZATIONS = ("global", "batch")
# How a step's examples are laid out for computing; auto: the fastest exact one the model takes.
BATCH_LAYOUTS = ("auto", "packed", "sorted", "padded")
MAX_MICRO_BATCH_TOKENS = 2**24


@dataclass
class BatchingOptions(EvalBatchingOptions):
    """How an optimizer step's examples are split into micro-batches and laid out."""

    per_device_train_batch_size: int = field(default=16, metadata=_opt("Train batch per process."))
    gradient_accumulation_steps: int = field(
        default=1, metadata=_opt("Micro-batches per optimizer step.")
    )
    global_batch_size: int = field(
        default=0,
        metadata=_opt(
            "Examples per optimizer step over all processes (instead of "
            "--gradient_accumulation_steps): accumulation = this / (per-device batch x processes)."
        ),
    )
    group_by_length: bool = field(
        default=False,
        metadata=_opt(
            "Fill each optimizer step with examples of similar length (sorted within shuffled "
            "groups of 50 global batches): about half the padding of random batches on "
            "sentence data, so faster, and the same on any topology; but each step's examples "
            "are no longer a random sample, which can change what the model learns (see "
            "docs/batching.md)."
        ),
    )
    max_tokens_per_batch: int = field(
        default=0,
        metadata=_opt(
            "Fill each training micro-batch up to this many padded tokens (longest example x "
            "examples), instead of --per_device_train_batch_size examples: the GPU memory "
            "knob. Changes the examples per step, so it changes what the model learns. 0: off."
        ),
    )
    loss_normalization: str = field(
        default="global",
        metadata=_opt(
            "global: each step's loss is the summed cross-entropy over the whole global batch "
            "divided by its labelled positions (tokens for NER, examples for RE), the same on "
            "any topology. batch: the mean of each micro-batch, averaged (the transformers "
            "default).",
        ),
    )
    batch_layout: str = field(
        default="auto",
        metadata=_opt(
            "How each step's examples are laid out for computing; never which examples form the "
            "step. packed: each micro-batch's sentences in one row without padding, attention "
            "kept within each sentence (token classification on models that use transformers' "
            "attention interface). sorted: the step's examples sorted by length into micro-"
            "batches of at most --micro_batch_tokens padded tokens. padded: each micro-batch "
            "padded to its longest example. auto: packed, else sorted, else padded. All give "
            "the padded layout's gradient up to float rounding (sorted needs "
            "--loss_normalization global).",
            choices=list(BATCH_LAYOUTS),
        ),
    )
    micro_batch_tokens: int = field(
        default=0,
        metadata=_opt(
            "The sorted layout's budget of padded tokens (longest example x examples) per "
            "micro-batch. 0: on a GPU 4096; on a CPU 256 for models of MiniLM's size (22.7M "
            "parameters) or larger, and proportionally more for smaller ones, whose per-call "
            "overhead outweighs the padding."
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        found += self.layout_problems()
        if self.loss_normalization == "tokens":  # what `global` was called before
            found.append(
                "--loss_normalization tokens is now called global: got 'tokens'. Use "
                "--loss_normalization global (the default)."
            )
        elif self.loss_normalization not in LOSS_NORMALIZATIONS:
            found.append(
                f"--loss_normalization is not one of {list(LOSS_NORMALIZATIONS)}: got "
                f"{self.loss_normalization!r}."
                f"{did_you_mean(str(self.loss_normalization), LOSS_NORMALIZATIONS)}"
            )
        found += positive_problems(
            self, ("per_device_train_batch_size", "gradient_accumulation_steps")
        )
        found += upper_bound_problems(
            self,
            {
                "per_device_train_batch_size": MAX_COUNT,
                "gradient_accumulation_steps": MAX_COUNT,
                "global_batch_size": MAX_COUNT,
            },
        )
        if self.global_batch_size < 0:
            found.append(f"--global_batch_size cannot be negative: got {self.global_batch_size}.")
        elif self.global_batch_size and self.gradient_accumulation_steps != 1:
            found.append(
                "--global_batch_size and --gradient_accumulation_steps are both set: got "
                f"{self.global_batch_size} and {self.gradient_accumulation_steps}. Give only one; "
                "the accumulation is derived from the global batch."
            )
        if self.max_tokens_per_batch < 0:
            found.append(
                f"--max_tokens_per_batch cannot be negative: got {self.max_tokens_per_batch}."
            )
        elif self.max_tokens_per_batch and self.global_batch_size:
            found.append(token_budget_problem("global_batch_size"))
        return found

    def layout_problems(self) -> list[str]:
        found = []
        if self.batch_layout == "sorted" and self.loss_normalization == "batch":
            found.append(
                "--batch_layout sorted needs --loss_normalization global: got batch, whose "
                "per-micro-batch means change when examples move between micro-batches. Use "
                "--batch_layout packed or padded, or --loss_normalization global."
            )
        if not 0 <= self.micro_batch_tokens <= MAX_MICRO_BATCH_TOKENS:
            found.append(
                f"--micro_batch_tokens must be in [0, {MAX_MICRO_BATCH_TOKENS}]: got "
                f"{self.micro_batch_tokens}. 0 picks a budget for the device."
            )
        elif self.micro_batch_tokens and self.batch_layout in ("packed", "padded"):
            found.append(
                f"--micro_batch_tokens is the sorted layout's budget: got "
                f"{self.micro_batch_tokens} with --batch_layout {self.batch_layout}. Drop it, or "
                "use --batch_layout sorted or auto."
            )
        return found

    def resolved_micro_batch_tokens(self, device_type: str, parameters: int) -> int:
        if self.micro_batch_tokens:
            return self.micro_batch_tokens
        if device_type == "cuda":
            return 4096
        # Measured on a 2-core CPU with MiniLM (bench/step_breakdown.py): 256 padded tokens.
        return round(256 * max(1.0, 22.7e6 / max(parameters, 1)))

    def resolved_accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on `world_size` processes."""
        if not self.global_batch_size:
            return self.gradient_accumulation_steps
        per_micro_step = self.per_device_train_batch_size * world_size
        if self.global_batch_size % per_micro_step:
            raise ConfigError(
                f"--global_batch_size {self.global_batch_size} is not a multiple of "
                f"--per_device_train_batch_size {self.per_device_train_batch_size} x "
                f"{world_size} process(es) = {per_micro_step}. Choose a global batch that is, or "
                "another per-device batch."
            )
        return self.global_batch_size // per_micro_step


def token_budget_problem(option: str) -> str:
    return (
        f"--max_tokens_per_batch and --{option} cannot be combined: token-budget batches hold a "
        "varying number of examples, so there is no fixed global batch. Drop one of them."
    )


@dataclass
class OptimOptions(OptionGroup):
    """The optimizer, its schedule, and how long training runs."""

    title: ClassVar[str] = "optimisation"

    learning_rate: float | None = field(
        default=None,
        metadata=_opt(
            "Peak learning rate. Default 5e-5 for pretrained models, 1e-3 for "
            "tiny-bert, which trains from scratch."
        ),
    )
    weight_decay: float = field(
        default=0.01, metadata=_opt("AdamW weight decay, not applied to biases and norm weights.")
    )
    adam_beta1: float = field(default=0.9, metadata=_opt("AdamW beta1."))
    adam_beta2: float = field(default=0.999, metadata=_opt("AdamW beta2."))
    adam_epsilon: float = field(default=1e-8, metadata=_opt("AdamW epsilon."))
    lr_scheduler_type: str = field(
        default="linear",
        metadata=_opt("Learning-rate schedule over optimizer steps.", choices=list(SCHEDULERS)),
    )
    warmup_ratio: float = field(
        default=0.0, metadata=_opt("Warmup as a fraction of all optimizer steps.")
    )
    num_warmup_steps: int = field(
        default=0, metadata=_opt("Warmup in optimizer steps (instead of --warmup_ratio).")
    )
    max_grad_norm: float = field(
        default=1.0, metadata=_opt("Clip the gradient norm to this; 0 disables clipping.")
    )
    num_train_epochs: float = field(default=3.0, metadata=_opt("Passes over the training data."))
    max_train_steps: int = field(
        default=0, metadata=_opt("Optimizer steps to run; overrides epochs when > 0.")
    )
    max_nonfinite_steps: int = field(
        default=5,
        metadata=_opt(
            "Stop (exit 3) when more than this many optimizer steps in a row have a NaN or "
            "inf loss or gradient; each such step is skipped on every process."
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        found += self.number_problems()
        found += self.length_problems()
        found += self.warmup_problems()
        if self.weight_decay < 0:
            found.append(f"--weight_decay cannot be negative: got {self.weight_decay}.")
        if self.max_grad_norm < 0:
            found.append(
                f"--max_grad_norm cannot be negative: got {self.max_grad_norm}. Use 0 to disable."
            )
        if self.max_nonfinite_steps < 0:
            found.append(
                f"--max_nonfinite_steps cannot be negative: got {self.max_nonfinite_steps}."
            )
        return found

    def number_problems(self) -> list[str]:
        """Learning rate and AdamW settings that are not finite or out of range."""
        found = []
        real_numbers = {
            "learning_rate": self.learning_rate or 0.0,
            "num_train_epochs": self.num_train_epochs,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "warmup_ratio": self.warmup_ratio,
            "adam_beta1": self.adam_beta1,
            "adam_beta2": self.adam_beta2,
            "adam_epsilon": self.adam_epsilon,
        }
        for name, value in real_numbers.items():
            if not math.isfinite(value):
                found.append(f"--{name} must be a finite number: got {value}.")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if math.isfinite(value) and not 0 <= value < 1:
                found.append(f"--{name} must be in [0, 1): got {value}. E.g. 0.9 or 0.999.")
        if self.adam_epsilon < 0:
            found.append(f"--adam_epsilon cannot be negative: got {self.adam_epsilon}. E.g. 1e-8.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            found.append(
                f"--learning_rate must be positive: got {self.learning_rate}. Use e.g. 5e-5."
            )
        return found

    def length_problems(self) -> list[str]:
        """How long to train: epochs and steps."""
        found = upper_bound_problems(self, {"max_train_steps": MAX_COUNT})
        if self.num_train_epochs < 0 or self.max_train_steps < 0:
            found.append(
                "--num_train_epochs and --max_train_steps cannot be negative: got "
                f"{self.num_train_epochs} and {self.max_train_steps}. Use positive values."
            )
        elif self.num_train_epochs == 0 and self.max_train_steps == 0:
            found.append(
                "--num_train_epochs and --max_train_steps are both 0: nothing to train. "
                "Set one of them to a positive value."
            )
        elif self.num_train_epochs > MAX_COUNT:
            found.append(
                f"--num_train_epochs must be at most {MAX_COUNT}: got {self.num_train_epochs}. "
                "Use a smaller value, or --max_train_steps."
            )
        return found

    def warmup_problems(self) -> list[str]:
        found = []
        if not 0 <= self.warmup_ratio < 1:
            found.append(f"--warmup_ratio must be in [0, 1): got {self.warmup_ratio}.")
        if self.num_warmup_steps < 0:
            found.append(f"--num_warmup_steps cannot be negative: got {self.num_warmup_steps}.")
        if self.lr_scheduler_type == "constant" and (self.warmup_ratio or self.num_warmup_steps):
            found.append(
                "--lr_scheduler_type constant has no warmup: got a warmup too. Use "
                "constant_with_warmup."
            )
        if self.warmup_ratio > 0 and self.num_warmup_steps > 0:
            found.append(
                f"--warmup_ratio and --num_warmup_steps are both set: got {self.warmup_ratio} "
                f"and {self.num_warmup_steps}. Give only one."
            )
        return found


@dataclass
class CheckpointOptions(OptionGroup):
    """When the training state is saved, how many saves are kept, and what a run resumes from."""

    title: ClassVar[str] = "checkpointing"

    checkpointing_steps: CheckpointEvery = field(
        default_factory=CheckpointEvery,
        metadata=_opt(
            "Save the full training state every N optimizer steps, at each epoch end ('epoch'), "
            "or never ('no'), as OUTPUT_DIR/checkpoint-<step>, committed atomically.",
            text_type=CheckpointEvery,
        ),
    )
    save_total_limit: int = field(
        default=0,
        metadata=_opt(
            "Keep at most this many checkpoints (0: all); older ones are deleted "
            "only after a new one is committed."
        ),
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata=_opt(
            "Resume from a checkpoint folder, 'latest' (the newest committed one in "
            "--output_dir), or 'auto' (that, or start fresh when there is none)."
        ),
    )
    allow_topology_change: bool = field(
        default=False,
        metadata=_opt(
            "Resume on another number of processes, per-device batch or accumulation, keeping "
            "the global batch: each optimizer step sees the same examples, but the result is "
            "no longer bit-exact."
        ),
    )

    def __post_init__(self):
        if isinstance(self.checkpointing_steps, str):
            self.checkpointing_steps = CheckpointEvery(self.checkpointing_steps)

    def problems(self) -> list[str]:
        found = super().problems()
        every = self.checkpointing_steps
        if not every.is_valid():
            found.append(
                f"--checkpointing_steps must be a positive number, epoch or no: got {every.text!r}."
            )
        if self.save_total_limit < 0:
            found.append(f"--save_total_limit cannot be negative: got {self.save_total_limit}.")
        if is_blank(self.resume_from_checkpoint):
            found.append(
                blank_problem(
                    "resume_from_checkpoint",
                    self.resume_from_checkpoint,
                    "Give a checkpoint folder, latest or auto, or leave the option out.",
                )
            )
        return found


@dataclass
class EvalOptions(OptionGroup):
    """When the model is evaluated during training, and which evaluation is the best."""

    title: ClassVar[str] = "evaluation"

    eval_steps: int = field(
        default=0, metadata=_opt("Also evaluate every N optimizer steps (0: only at epoch ends).")
    )
    metric_for_best_model: str | None = field(
        default=None,
        metadata=_opt(
            "Track the best value of this eval metric (e.g. eval_f1; lower is better "
            "for names ending in loss); its checkpoint is never rotated away."
        ),
    )
    early_stopping_patience: int = field(
        default=0,
        metadata=_opt(
            "Stop after this many evaluations in a row without a better "
            "--metric_for_best_model (0: never). Survives a resume."
        ),
    )
    load_best_model_at_end: bool = field(
        default=False,
        metadata=_opt(
            "Save the model of the best --metric_for_best_model evaluation, not the last one. "
            "Each new best is checkpointed; --save_total_limit bounds how many are kept."
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        metric = self.metric_for_best_model
        if metric is not None and not metric.startswith("eval_"):
            found.append(
                f"--metric_for_best_model must name an eval metric: got {metric!r}. E.g. eval_f1."
            )
        if self.early_stopping_patience < 0:
            found.append(
                f"--early_stopping_patience cannot be negative: got {self.early_stopping_patience}."
            )
        elif self.early_stopping_patience and metric is None:
            found.append(
                "--early_stopping_patience needs --metric_for_best_model: got none. Name the "
                "metric to watch, e.g. eval_f1."
            )
        if self.load_best_model_at_end and metric is None:
            found.append(
                "--load_best_model_at_end needs --metric_for_best_model: got none. Name the "
                "metric that picks the best model, e.g. eval_f1."
            )
        if self.eval_steps < 0:
            found.append(f"--eval_steps cannot be negative: got {self.eval_steps}.")
        return found


@dataclass
class LoggingOptions(OptionGroup):
    """How often training logs, and to which tracker."""

    title: ClassVar[str] = "logging"

    logging_steps: int = field(
        default=10, metadata=_opt("Log loss and learning rate every N optimizer steps.")
    )
    report_to: str = field(
        default="none",
        metadata=_opt(
            "Tracker for the log records, through Accelerate, on the main process: all = every "
            "installed one.",
            choices=list(REPORT_TO),
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems() + positive_problems(self, ("logging_steps",))
        if self.report_to in OPTIONAL_TRACKERS and importlib.util.find_spec(self.report_to) is None:
            found.append(
                f"--report_to {self.report_to} needs the {self.report_to} package, which is not "
                f"installed: pip install {self.report_to}, or use tensorboard."
            )
        return found


@dataclass
class RuntimeOptions(OptionGroup):
    """Where and how the processes run: seed, precision, device, collective timeout."""

    title: ClassVar[str] = "runtime"

    seed: int = field(default=42, metadata=_opt("Seed for model init, data order and dropout."))
    mixed_precision: str | None = field(
        default=None,
        metadata=_opt(
            "no, fp16 or bf16, passed to Accelerate. Default: the accelerate config's setting "
            "(`accelerate launch`), else no.",
            choices=list(MIXED_PRECISION),
        ),
    )
    cpu: bool = field(default=False, metadata=_opt("Run on CPU even when a GPU is present."))
    ddp_timeout: int = field(
        default=300,
        metadata=_opt(
            "Seconds a process waits in a collective (all-reduce, barrier) for the others before "
            "it fails: bounds the hang when a process or node is lost."
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if not 0 <= self.seed <= MAX_SEED:
            found.append(
                f"--seed must be in [0, {MAX_SEED}] (2**32 - 1): got {self.seed}. Use e.g. 42."
            )
        if self.ddp_timeout <= 0:
            found.append(f"--ddp_timeout must be positive: got {self.ddp_timeout}. E.g. 300.")
        elif self.ddp_timeout > MAX_DDP_TIMEOUT:
            found.append(
                f"--ddp_timeout must be at most {MAX_DDP_TIMEOUT} seconds (365 days): got "
                f"{self.ddp_timeout}. E.g. 300; it bounds how long a lost process can hang the run."
            )
        return found


@dataclass
class ComputeOptions(OptionGroup):
    """How the model computes a training step: compiled, and with activations recomputed."""

    title: ClassVar[str] = "compute"

    torch_compile: bool = field(
        default=False,
        metadata=_opt(
            "Compile the model's forward with torch.compile (inductor, in place: checkpoints "
            "and the saved model are the same as without). Each new input shape compiles "
            "first, so it pays off for long runs; see docs/batching.md."
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=_opt(
            "Recompute activations in the backward pass instead of keeping them: about a third "
            "more compute for much less activation memory; for batches that do not fit."
        ),
    )


PEFT_METHODS = ("none", "lora")
# The options that only --peft lora reads, with what tells that they were given.
LORA_OPTIONS = ("lora_r", "lora_alpha", "lora_dropout", "lora_target_modules", "save_adapter_only")
PEFT_INSTALL = 'pip install -e ".[peft]" (or pip install peft)'


@dataclass
class PeftOptions(OptionGroup):
    """Parameter-efficient fine-tuning through the peft library: which method, LoRA's settings,
    and what the final folder holds."""

    title: ClassVar[str] = "peft"

    peft: str = field(
        default="none",
        metadata=_opt(
            "none: train every weight. lora: freeze the pretrained weights and train low-rank "
            "adapters (peft's LoRA) on --lora_target_modules, the classification head and the "
            "embeddings of tokens the task adds (RE markers) in full. Needs " + PEFT_INSTALL + ".",
            choices=list(PEFT_METHODS),
        ),
    )
    lora_r: int = field(default=8, metadata=_opt("LoRA rank: the adapters' inner dimension."))
    lora_alpha: int = field(
        default=16, metadata=_opt("LoRA scaling: the adapter's output is scaled by alpha / r.")
    )
    lora_dropout: float = field(
        default=0.1, metadata=_opt("Dropout on the adapters' input, in [0, 1).")
    )
    lora_target_modules: list[str] | None = field(
        default=None,
        metadata=_opt(
            "Names of the modules that get adapters (e.g. query value), matched against the end "
            "of each module's name. Default: peft's own choice for the model's architecture "
            "(query and value for BERT, RoBERTa, ELECTRA)."
        ),
    )
    save_adapter_only: bool = field(
        default=False,
        metadata=_opt(
            "Save only the adapter (adapter_config.json, adapter_model.safetensors with the "
            "head) and the tokenizer, not merged weights; loading it needs peft and the base "
            "model. Default: the adapters merged into plain weights that load without peft."
        ),
    )

    @property
    def uses_lora(self) -> bool:
        return self.peft == "lora"

    def problems(self) -> list[str]:
        found = super().problems()
        if not self.uses_lora:
            defaults = PeftOptions()
            found += [
                f"--{name} needs --peft lora: got --peft {self.peft}. Add --peft lora, or leave "
                f"out --{name}."
                for name in LORA_OPTIONS
                if getattr(self, name) != getattr(defaults, name)
            ]
            return found
        if importlib.util.find_spec("peft") is None:
            found.append(
                f"--peft lora needs the peft package, which is not installed: {PEFT_INSTALL}."
            )
        found += positive_problems(self, ("lora_r", "lora_alpha"))
        found += upper_bound_problems(self, {"lora_r": MAX_COUNT, "lora_alpha": MAX_COUNT})
        if not (math.isfinite(self.lora_dropout) and 0 <= self.lora_dropout < 1):
            found.append(
                f"--lora_dropout must be in [0, 1): got {self.lora_dropout}. Use e.g. 0.1, or 0 "
                "for none."
            )
        targets = self.lora_target_modules
        if targets is not None and (not targets or not all(name.strip() for name in targets)):
            found.append(
                f"--lora_target_modules has an empty name: got {targets}. Name the modules, e.g. "
                "query value, or leave the option out for peft's default."
            )
        return found


@dataclass
class TaskOverrides(OptionGroup):
    """Options of the saved model's task that evaluate accepts; None: the model's own. Help,
    choices and checks come from the option of the task that metadata "task" names."""

    title: ClassVar[str] = "task overrides"

    tag_scheme: str | None = field(default=None, metadata={"task": "ner"})
    negative_label: str | None = field(default=None, metadata={"task": "re"})

    def given(self) -> dict[str, str]:
        """The overrides given, by option name."""
        return {f.name: getattr(self, f.name) for f in fields(self) if getattr(self, f.name)}

    def problems(self) -> list[str]:
        """The task's own checks of each given override."""
        found = []
        for option in fields(self):
            value = getattr(self, option.name)
            if value is not None:
                given = options_class(option.metadata["task"])(**{option.name: value})
                found += choice_problems(given) + given.problems()
        return found
