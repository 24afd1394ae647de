"""Typed options for every subcommand, and their validation.

This module imports nothing heavy so that `accel-trainer --help` stays fast.
"""

from __future__ import annotations

import importlib.util
import math
import os
from dataclasses import asdict, dataclass, field, fields

from accel_trainer.errors import ConfigError

TINY_BERT = "tiny-bert"
TASKS = ("ner", "re")
SCHEDULERS = ("linear", "cosine", "constant_with_warmup", "constant")
TAG_SCHEMES = ("bio", "iobes", "none")
DATA_FORMATS = ("auto", "conll", "jsonl", "semeval2010")
DEFAULT_MARKERS = "<e1>,</e1>,<e2>,</e2>"
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
# Special tokens of BERT and RoBERTa tokenizers: an entity marker must not be one of them.
RESERVED_MARKERS = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>")


def _opt(help_text: str, **metadata) -> dict:
    return {"help": help_text, **metadata}


def demo_output_dir(task: str) -> str:
    return os.path.join("outputs", f"demo-{task}")


def is_blank(value: str | None) -> bool:
    """Given, but empty or only whitespace."""
    return value is not None and not value.strip()


def blank_problem(option: str, value: str, what_to_do: str) -> str:
    return f"--{option} is empty: got {value!r}. {what_to_do}"


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
                f"--{option} is not a file: got {path!r}. Give a CoNLL or JSON lines file."
            )
        elif not os.access(path, os.R_OK):
            found.append(f"--{option} is not readable: got {path!r}. Check its permissions.")
    return found


def upper_bound_problems(config, bounds: dict[str, int]) -> list[str]:
    """Options above their limit, as `--name must be at most LIMIT: got VALUE.`"""
    found = []
    for name, limit in bounds.items():
        value = getattr(config, name)
        if value is not None and value > limit:
            found.append(f"--{name} must be at most {limit}: got {value}. Use a smaller value.")
    return found


@dataclass
class RunConfig:
    """Options of every subcommand that runs a model."""

    model_name_or_path: str = field(
        default=TINY_BERT,
        metadata=_opt(
            "Hub model name or local folder. 'tiny-bert' builds a small randomly initialised "
            "BERT and a WordPiece tokenizer from the training data (no download)."
        ),
    )
    data_format: str = field(
        default="auto",
        metadata=_opt(
            "conll, jsonl, semeval2010, or auto: .json/.jsonl are JSON lines; for NER anything "
            "else is CoNLL; for RE, files whose first line starts with a number and a tab are "
            "SemEval-2010 Task 8, others JSON lines.",
            choices=list(DATA_FORMATS),
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
    per_device_eval_batch_size: int = field(default=32, metadata=_opt("Eval batch per process."))
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
    seed: int = field(default=42, metadata=_opt("Seed for model init, data order and dropout."))
    config: str | None = field(
        default=None,
        metadata=_opt("YAML or JSON file of options; flags on the command line override it."),
    )

    def problems(self) -> list[str]:
        """Every invalid option, as one message each."""
        found = choice_problems(self)
        if is_blank(self.model_name_or_path):
            found.append(
                blank_problem(
                    "model_name_or_path",
                    self.model_name_or_path,
                    "Give a hub name or a model folder.",
                )
            )
        if self.max_seq_length < 8:
            found.append(
                f"--max_seq_length must be at least 8: got {self.max_seq_length}. "
                "Use a longer length, e.g. 128."
            )
        elif (
            self.model_name_or_path == TINY_BERT and self.max_seq_length > TINY_BERT_MAX_SEQ_LENGTH
        ):
            found.append(
                f"--max_seq_length must be at most {TINY_BERT_MAX_SEQ_LENGTH} for tiny-bert: got "
                f"{self.max_seq_length}. Its position embeddings hold that many tokens; use e.g. "
                "128 (NER evaluation windows long sentences anyway)."
            )
        elif self.max_seq_length > MAX_SEQ_LENGTH:
            found.append(
                f"--max_seq_length must be at most {MAX_SEQ_LENGTH}: got {self.max_seq_length}. "
                "Use the model's own limit or less, e.g. 512."
            )
        if not 0 <= self.seed <= MAX_SEED:
            found.append(
                f"--seed must be in [0, {MAX_SEED}] (2**32 - 1): got {self.seed}. Use e.g. 42."
            )
        if self.preprocessing_num_workers < 0:
            found.append(
                "--preprocessing_num_workers cannot be negative: got "
                f"{self.preprocessing_num_workers}. Use 0 to tokenize in the main process."
            )
        if self.ddp_timeout <= 0:
            found.append(f"--ddp_timeout must be positive: got {self.ddp_timeout}. E.g. 300.")
        elif self.ddp_timeout > MAX_DDP_TIMEOUT:
            found.append(
                f"--ddp_timeout must be at most {MAX_DDP_TIMEOUT} seconds (365 days): got "
                f"{self.ddp_timeout}. E.g. 300; it bounds how long a lost process can hang the run."
            )
        if self.per_device_eval_batch_size <= 0:
            found.append(
                "--per_device_eval_batch_size must be positive: "
                f"got {self.per_device_eval_batch_size}. Use e.g. 32."
            )
        found += upper_bound_problems(self, {"per_device_eval_batch_size": MAX_COUNT})
        found += data_file_problems(self.data_file_options())
        return found

    def data_file_options(self) -> dict[str, str | None]:
        """The data files this command reads, by option name."""
        return {}

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class DataConfig(RunConfig):
    """Options of the subcommands that read labelled data: train and evaluate."""

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
    tag_scheme: str = field(
        default="bio",
        metadata=_opt(
            "Check every tag against this scheme: bio (O, B-X, I-X), iobes (also E-X, S-X), "
            "or none.",
            choices=list(TAG_SCHEMES),
        ),
    )
    output_dir: str | None = field(
        default=None,
        metadata=_opt(
            "Where results go. Train: required with your own data (outputs/demo-TASK for the demo)."
        ),
    )
    negative_label: str | None = field(
        default=None,
        metadata=_opt(
            "RE: the label meaning 'no relation' (e.g. Other, no_relation), left out of the "
            "micro and macro scores. Default: none (the RE demo: no_relation); evaluate: the "
            "trained model's."
        ),
    )

    def data_file_options(self) -> dict[str, str | None]:
        return {"validation_file": self.validation_file}

    def problems(self) -> list[str]:
        found = super().problems()
        if is_blank(self.output_dir):
            found.append(
                blank_problem(
                    "output_dir",
                    self.output_dir,
                    "Name a folder for the results, or leave the option out for the default.",
                )
            )
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
        if is_blank(self.negative_label):
            found.append(
                blank_problem(
                    "negative_label",
                    self.negative_label,
                    "Name the 'no relation' label (e.g. Other), or leave the option out.",
                )
            )
        if self.validation_file is not None and self.dataset_name is not None:
            found.append(
                "--validation_file and --dataset_name are mutually exclusive: got both. "
                "Give data files or a dataset name."
            )
        return found


@dataclass
class TrainConfig(DataConfig):
    """Options of `accel-trainer train`."""

    task: str = field(
        default="ner",
        metadata=_opt(
            "ner (token classification) or re (relation classification).", choices=list(TASKS)
        ),
    )
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
    num_train_epochs: float = field(default=3.0, metadata=_opt("Passes over the training data."))
    max_train_steps: int = field(
        default=0, metadata=_opt("Optimizer steps to run; overrides epochs when > 0.")
    )
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
            "are no longer a random sample, which can change what the model learns (see README)."
        ),
    )
    max_tokens_per_batch: int = field(
        default=0,
        metadata=_opt(
            "Pack each training micro-batch to this many padded tokens (longest example x "
            "examples), instead of --per_device_train_batch_size examples: the GPU memory "
            "knob. Changes the examples per step, so it changes what the model learns. 0: off."
        ),
    )
    loss_normalization: str = field(
        default="tokens",
        metadata=_opt(
            "tokens: each step's loss is the summed cross-entropy over the whole global batch "
            "divided by its labelled tokens (NER) or examples (RE), the same on any topology. "
            "batch: the mean of each micro-batch, averaged (the transformers default).",
            choices=["tokens", "batch"],
        ),
    )
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
    label_all_tokens: bool = field(
        default=False,
        metadata=_opt(
            "Train on every sub-token (B- continues as I-), not only the first of a "
            "word. Evaluation always scores words."
        ),
    )
    eval_steps: int = field(
        default=0, metadata=_opt("Also evaluate every N optimizer steps (0: only at epoch ends).")
    )
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
    overwrite_output_dir: bool = field(
        default=False, metadata=_opt("Replace a model that already is in --output_dir.")
    )
    checkpointing_steps: str = field(
        default="no",
        metadata=_opt(
            "Save the full training state every N optimizer steps, at each epoch end ('epoch'), "
            "or never ('no'), as OUTPUT_DIR/checkpoint-<step>, committed atomically."
        ),
    )
    save_total_limit: int = field(
        default=0,
        metadata=_opt(
            "Keep at most this many checkpoints (0: all); older ones are deleted "
            "only after a new one is committed."
        ),
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
    max_nonfinite_steps: int = field(
        default=5,
        metadata=_opt(
            "Stop (exit 3) after this many optimizer steps in a row with a NaN or inf "
            "loss or gradient; each such step is skipped on every process."
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
    entity_markers: str = field(
        default=DEFAULT_MARKERS,
        metadata=_opt(
            "RE: head start, head end, tail start, tail end markers, comma separated; they mark "
            "entities in `text` inputs and are inserted for `tokens`+`head`/`tail` inputs. "
            'ChemProt style: "<<,>>,[[,]]".'
        ),
    )
    typed_markers: bool = field(
        default=False,
        metadata=_opt("RE: put the entity type in the markers, e.g. <e1:PER> (needs head.type)."),
    )

    @property
    def is_demo(self) -> bool:
        """No data given: train on the built-in demo corpus."""
        return self.train_file is None and self.validation_file is None and not self.dataset_name

    @property
    def is_tiny_bert(self) -> bool:
        return self.model_name_or_path == TINY_BERT

    def resolved_learning_rate(self) -> float:
        if self.learning_rate is not None:
            return self.learning_rate
        return 1e-3 if self.is_tiny_bert else 5e-5

    def resolved_output_dir(self) -> str:
        # `is None`, not `or`: an empty --output_dir is refused, never taken for the demo's.
        return demo_output_dir(self.task) if self.output_dir is None else self.output_dir

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

    def data_file_options(self) -> dict[str, str | None]:
        return {"train_file": self.train_file, "validation_file": self.validation_file}

    def markers(self) -> list[str]:
        return [marker.strip() for marker in self.entity_markers.split(",")]

    @property
    def checkpoint_every(self):  # merge shim: the config stream types this
        from types import SimpleNamespace

        every = self.checkpointing_steps
        steps = int(every) if every.isascii() and every.isdigit() else None
        return SimpleNamespace(every_steps=steps, every_epoch=every == "epoch")

    def problems(self) -> list[str]:
        found = super().problems()
        positive = {
            "per_device_train_batch_size": self.per_device_train_batch_size,
            "gradient_accumulation_steps": self.gradient_accumulation_steps,
            "logging_steps": self.logging_steps,
        }
        for name, value in positive.items():
            if value <= 0:
                found.append(f"--{name} must be positive: got {value}. Use 1 or more.")
        found += upper_bound_problems(
            self,
            {
                "per_device_train_batch_size": MAX_COUNT,
                "gradient_accumulation_steps": MAX_COUNT,
                "global_batch_size": MAX_COUNT,
                "max_train_steps": MAX_COUNT,
            },
        )
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
        if self.weight_decay < 0:
            found.append(f"--weight_decay cannot be negative: got {self.weight_decay}.")
        if self.max_grad_norm < 0:
            found.append(
                f"--max_grad_norm cannot be negative: got {self.max_grad_norm}. Use 0 to disable."
            )
        every = self.checkpointing_steps
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        is_number = every.isascii() and every.isdigit()
        if every not in ("no", "epoch") and not (is_number and int(every) > 0):
            found.append(
                f"--checkpointing_steps must be a positive number, epoch or no: got {every!r}."
            )
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
        elif self.max_tokens_per_batch:
            for option in ("global_batch_size", "allow_topology_change"):
                if getattr(self, option):
                    found.append(
                        f"--max_tokens_per_batch and --{option} cannot be combined: token-budget "
                        "batches hold a varying number of examples, so there is no fixed global "
                        f"batch. Drop one of them."
                    )
        if self.report_to in OPTIONAL_TRACKERS and importlib.util.find_spec(self.report_to) is None:
            found.append(
                f"--report_to {self.report_to} needs the {self.report_to} package, which is not "
                f"installed: pip install {self.report_to}, or use tensorboard."
            )
        if self.load_best_model_at_end and metric is None:
            found.append(
                "--load_best_model_at_end needs --metric_for_best_model: got none. Name the "
                "metric that picks the best model, e.g. eval_f1."
            )
        if self.max_nonfinite_steps < 0:
            found.append(
                f"--max_nonfinite_steps cannot be negative: got {self.max_nonfinite_steps}."
            )
        if self.save_total_limit < 0:
            found.append(f"--save_total_limit cannot be negative: got {self.save_total_limit}.")
        if self.eval_steps < 0:
            found.append(f"--eval_steps cannot be negative: got {self.eval_steps}.")
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
        markers = self.markers()
        if len(markers) != 4 or not all(markers) or len(set(markers)) != 4:
            found.append(
                f"--entity_markers must be 4 different, non-empty strings separated by commas: "
                f'got {self.entity_markers!r}. E.g. "<e1>,</e1>,<e2>,</e2>".'
            )
        elif reserved := [marker for marker in markers if marker in RESERVED_MARKERS]:
            found.append(
                f"--entity_markers cannot be special tokens of a tokenizer: got {reserved[0]!r}. "
                'Use markers of their own, e.g. "<e1>,</e1>,<e2>,</e2>".'
            )
        if is_blank(self.resume_from_checkpoint):
            found.append(
                blank_problem(
                    "resume_from_checkpoint",
                    self.resume_from_checkpoint,
                    "Give a checkpoint folder, latest or auto, or leave the option out.",
                )
            )
        if self.task != "ner" and self.label_all_tokens:
            found.append("--label_all_tokens applies to --task ner only: got --task re.")
        if self.train_file is not None and self.dataset_name is not None:
            found.append(
                "--train_file and --dataset_name are mutually exclusive: got both. Give data "
                "files or a dataset name."
            )
        has_train_data = self.train_file is not None or self.dataset_name is not None
        if not self.is_demo and not has_train_data:
            found.append(
                "--train_file is missing: got only --validation_file. Give --train_file too, or "
                "neither for the demo."
            )
        if not self.is_demo and self.output_dir is None:
            found.append(
                "--output_dir is missing: it is required with your own data. "
                "Name a folder for the model and results."
            )
        return found


@dataclass
class PredictConfig(RunConfig):
    """Options of `accel-trainer predict`: label new text with a saved model."""

    input_file: str | None = field(
        default=None,
        metadata=_opt("Text to label, in a format of the model's task (labels not needed)."),
    )
    output_file: str | None = field(
        default=None,
        metadata=_opt("Where predictions go: CoNLL or JSON lines matching --input_file."),
    )
    overwrite_output_file: bool = field(
        default=False,
        metadata=_opt(
            "Replace an existing --output_file that is not an earlier prediction output of "
            "accel-trainer."
        ),
    )

    def data_file_options(self) -> dict[str, str | None]:
        return {"input_file": self.input_file}

    def problems(self) -> list[str]:
        found = super().problems()
        source, target = self.input_file, self.output_file
        if source is None or target is None:
            found.append(
                "--input_file and --output_file are required: predict reads one and writes the "
                "other."
            )
        if is_blank(target):
            found.append(blank_problem("output_file", target, "Name the file to write."))
        elif target is not None:
            if os.path.isdir(target):
                found.append(f"--output_file is a folder: got {target!r}. Name a file.")
            elif not os.path.isdir(os.path.dirname(os.path.abspath(target))):
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
        if self.model_name_or_path == TINY_BERT:
            found.append(
                "--model_name_or_path is missing: predict needs a trained model. Give the output "
                "folder of a training run."
            )
        return found


@dataclass
class EvalConfig(DataConfig):
    """Options of `accel-trainer evaluate`: score a saved model on a labelled file."""

    def problems(self) -> list[str]:
        found = super().problems()
        if self.validation_file is None and self.dataset_name is None:
            found.append(
                "--validation_file is missing: evaluate needs labelled data. "
                "Give a CoNLL or JSON lines file."
            )
        if self.model_name_or_path == TINY_BERT:
            found.append(
                "--model_name_or_path is missing: evaluate needs a trained model. "
                "Give the output folder of a training run."
            )
        return found

    def resolved_output_dir(self) -> str:
        return self.model_name_or_path if self.output_dir is None else self.output_dir


def choice_problems(config: RunConfig) -> list[str]:
    """Options outside their choices; argparse checks flags, but not values from a config file."""
    found = []
    for option in fields(config):
        choices = option.metadata.get("choices")
        value = getattr(config, option.name)
        if choices and value is not None and value not in choices:
            found.append(f"--{option.name} is not one of {choices}: got {value!r}.")
    return found


def problems_error(found: list[str]) -> ConfigError:
    """One ConfigError for one or more problems, in the format of `validate`."""
    return ConfigError("invalid options:\n  " + "\n  ".join(found) if len(found) > 1 else found[0])


def validate(config: RunConfig) -> None:
    """Raise one ConfigError that lists every invalid option."""
    found = config.problems()
    if found:
        raise problems_error(found)
