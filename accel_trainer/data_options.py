"""The data options (TrainConfig.data, and evaluate's and predict's): which files or `datasets`
dataset, their format and labels, and how they are tokenized; prepare.py reads them."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import (
    MAX_COUNT,
    blank_problem,
    data_file_problems,
    did_you_mean,
    is_blank,
    known_data_formats,
    opt,
    upper_bound_problems,
)
from accel_trainer.config.options import OptionGroup


@dataclass
class InputOptions(OptionGroup):
    """How any data file is read and tokenized."""

    title: ClassVar[str] = "data"

    data_format: str = field(
        default="auto",
        metadata=opt(
            "conll, jsonl, semeval2010, text (predict: raw text), or auto: .json/.jsonl are JSON "
            "lines; for NER anything else is CoNLL (predict tells CoNLL from raw text by its "
            "lines, docs/write-policy.md); for RE, files whose first line starts with a number "
            "and a tab are SemEval-2010 Task 8, others JSON lines. A registered task may read "
            "others."
        ),
    )
    max_seq_length: int = field(
        default=128,
        metadata=opt(
            "Sub-tokens per sequence. Training truncates NER sentences (and counts them); NER "
            "evaluation and prediction use sliding windows; RE windows the text around both "
            "entities."
        ),
    )
    preprocessing_num_workers: int = field(
        default=0,
        metadata=opt(
            "Processes that tokenize (datasets.map num_proc); 0 or 1: the main process. The "
            "result is cached under HF_DATASETS_CACHE/accel_trainer and reused by later runs.",
            on_resume="free",
        ),
    )
    overwrite_cache: bool = field(
        default=False,
        metadata=opt("Tokenize again instead of loading the cached result.", on_resume="free"),
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
        default=None, metadata=opt("Evaluation data: CoNLL or JSON lines.", on_resume="free")
    )
    dataset_name: str | None = field(
        default=None,
        metadata=opt("A `datasets` dataset name or local dataset folder, instead of files."),
    )
    dataset_config_name: str | None = field(
        default=None, metadata=opt("Configuration name of --dataset_name.")
    )
    max_eval_samples: int = field(
        default=0,
        metadata=opt(
            "Evaluate on the first N examples of the evaluation data only (for quick runs, as "
            "run_ner.py's option); 0: all. Logged and recorded in the results."
        ),
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
        found += sample_limit_problems(self, "max_eval_samples")
        name = self.dataset_name
        if name and name.startswith((".", "/", "~")) and not os.path.exists(name):
            found.append(
                f"--dataset_name names a folder that does not exist: got {name!r}. Check the "
                "path, or give a hub dataset name (e.g. conll2003)."
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
        metadata=opt(
            "Training data: CoNLL or JSON lines. Omit it (and all data options) for "
            "the built-in demo corpus.",
            on_resume="free",
        ),
    )
    label_names: list[str] | None = field(
        default=None,
        metadata=opt("The label list, in order. Default: the sorted tags of the training data."),
    )
    max_train_samples: int = field(
        default=0,
        metadata=opt(
            "Train on the first N examples of the training data only (for quick runs, as "
            "run_ner.py's option); 0: all. Logged and recorded in the results."
        ),
    )

    def data_files(self) -> dict[str, str | None]:
        return {"train_file": self.train_file, "validation_file": self.validation_file}

    def problems(self) -> list[str]:
        found = super().problems() + sample_limit_problems(self, "max_train_samples")
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
        elif labels is not None and len(labels) == 1 and "," in labels[0]:
            found.append(
                f"--label_names is one label: got {labels}. Separate the labels by spaces: "
                f"--label_names {' '.join(part for part in labels[0].split(',') if part)} (in a "
                "config file, a list)."
            )
        return found

    @property
    def is_demo(self) -> bool:
        """No data given: train on the built-in demo corpus."""
        return self.train_file is None and self.validation_file is None and not self.dataset_name


def sample_limit_problems(options, name: str) -> list[str]:
    """--max_train_samples / --max_eval_samples: 0 (all) or a positive count."""
    value = getattr(options, name)
    if value < 0:
        return [f"--{name} cannot be negative: got {value}. Use 0 for all examples."]
    return upper_bound_problems(options, {name: MAX_COUNT})
