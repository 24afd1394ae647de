"""The Task interface: everything a task decides, and nothing the trainer or commands decide."""

from __future__ import annotations

import abc
import dataclasses
import logging
from dataclasses import dataclass, fields
from typing import TYPE_CHECKING, Any, ClassVar, TextIO

from accel_trainer.errors import ConfigError, DataError
from accel_trainer.tasks.files import check_readable, json_line, utf8_problem
from accel_trainer.tasks.wording import example_word

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


IGNORE_INDEX = -100
# Row bookkeeping that travels beside the model inputs and is gathered with the predictions:
# the row's place in its dataset, the example it belongs to, and per sub-token word positions.
META_KEYS = ("row_id", "example_id", "word_index")
logger = logging.getLogger("accel_trainer")


@dataclass(frozen=True)
class PredictionInput:
    """What `predict` reads and writes: the file, how to read it (--data_format, and for raw
    text --text_format), the length examples are fitted to, the --output_format asked for,
    and the model's labels."""

    input_file: str
    data_format: str
    max_seq_length: int
    output_format: str = "auto"
    text_format: str | None = None
    labels: tuple[str, ...] = ()


@dataclass
class TaskOptions:
    """The options a task owns (flags of its own on the command line); none by default."""

    def problems(self) -> list[str]:
        """Every invalid option, as one message each."""
        return []


BaseOptions = TaskOptions  # the name the interface documents for a task without options


class Task(abc.ABC):
    """A task plugs into the trainer by composition: code outside tasks/ only calls these.

    Datasets a task reads hold one example per row with a `line` column (where the example
    starts in its file, for error messages) beside the task's own columns."""

    name: ClassVar[str]  # the registry name: --task NAME
    label_key: ClassVar[str] = "label"  # the batch key of the gold labels: "labels" or "label"
    auto_model_class_name: ClassVar[str] = "AutoModelForSequenceClassification"
    pipeline_tag: ClassVar[str] = "text-classification"  # the transformers pipeline of the model
    options_class: ClassVar[type[TaskOptions]] = TaskOptions
    data_formats: ClassVar[tuple[str, ...]] = ("auto",)  # the --data_format values read() takes
    # One label per token: examples can share a packed row (--batch_layout packed). A task
    # whose model pools a sentence into one prediction cannot.
    token_level_labels: ClassVar[bool] = False
    # What `predict` can write (--output_format), and whether it reads raw text documents.
    output_formats: ClassVar[tuple[str, ...]] = ("auto", "jsonl")
    reads_text: ClassVar[bool] = False

    # Configuration: for a training run, and for a saved model.

    @classmethod
    def from_options(cls, options: TaskOptions) -> Task:
        """The task configured for a train run; by default the options' fields are the
        constructor's keyword arguments."""
        return cls(**{f.name: getattr(options, f.name) for f in dataclasses.fields(options)})

    @classmethod
    def from_settings(cls, settings: dict, model_dir: str) -> Task:
        """The task of a saved model, from the `accel_trainer` entry of its config.json (what
        settings() returned); KeyError or TypeError name a missing or invalid entry."""
        return cls()

    def settings(self) -> dict:
        """What a saved model needs to rebuild this task (stored in its config.json)."""
        return {"task": self.name}

    def apply_run_options(self, overrides: dict[str, Any], model_dir: str) -> None:
        """Options given to evaluate replace the saved model's settings of the same name (NER:
        --tag_scheme, RE: --negative_label); an option this task does not have is refused."""
        own = {option.name for option in fields(self.options_class)}
        for name, value in overrides.items():
            if name not in own:
                raise ConfigError(
                    f"--{name} is not an option of the model's task: got --{name} {value!r}, "
                    f"and the model at {model_dir} does task {self.name!r}. Leave it out."
                )
            setattr(self, name, value)

    def tokenization_settings(self) -> dict:
        """Everything of the task that shapes tokenized rows: part of the tokenization cache key."""
        return self.settings()

    # Reading data.

    def read(self, path: str, what: str, data_format: str, labelled: bool = True) -> Dataset:
        """One split from a local file; `what` names it in errors (e.g. --train_file); an
        unlabelled split (for predict) may lack labels."""
        from datasets import Dataset

        check_readable(path, what)
        what = f"{what} {path}"
        try:
            examples = self.read_examples(path, what, data_format, labelled)
        except UnicodeDecodeError:
            raise utf8_problem(path, what) from None
        if not examples:
            word = example_word(self)
            raise DataError(
                f"{what} is empty: got 0 {word}s. Give a file with at least one {word}."
            )
        return Dataset.from_list(examples)

    def read_for_prediction(self, source: PredictionInput) -> Dataset:
        """The examples `predict` labels; by default read() without labels."""
        return self.read(source.input_file, "--input_file", source.data_format, labelled=False)

    @abc.abstractmethod
    def read_examples(self, path: str, what: str, data_format: str, labelled: bool) -> list[dict]:
        """The examples of a readable file, each with its `line`; DataError naming `what` and
        the line for a bad one."""

    def read_hub(self, name: str, config_name: str | None, split: str) -> Dataset:
        """One split of a `datasets` dataset; by default the task reads local files only."""
        raise ConfigError(
            f"--dataset_name is not supported for --task {self.name}: got {name!r}. Give "
            "--train_file and --validation_file."
        )

    @abc.abstractmethod
    def example_labels(self, dataset: Dataset) -> list[list[str]]:
        """The gold labels of each example (one for a sentence label, one per word for tags)."""

    @abc.abstractmethod
    def words(self, dataset: Dataset) -> list[list[str]]:
        """The words of each example, for building a tokenizer vocabulary (tiny-bert)."""

    # Labels.

    def label_list(self, train: Dataset) -> list[str]:
        """The sorted, stable label list of the training data."""
        return sorted({label for labels in self.example_labels(train) for label in labels})

    def check_labels(
        self, dataset: Dataset, labels: list[str], what: str, problem: str = "unseen in training"
    ) -> None:
        """DataError naming the first example with a label not in `labels`, at its label's line
        (a `label_line` column, where the label has a line of its own), else its own."""
        known = set(labels)
        lines = dataset["label_line" if "label_line" in dataset.column_names else "line"]
        for example_labels, line in zip(self.example_labels(dataset), lines, strict=True):
            unknown = [label for label in example_labels if label not in known]
            if unknown:
                raise DataError(
                    f"{what} line {line} has a label {problem}: got {min(unknown)!r}. "
                    f"Known labels: {labels}. Add it to the training data or to --label_names."
                )

    def check_label_options(self, labels: list[str]) -> None:
        """ConfigError for a task option that names a label not in `labels`; none by default."""
        return None

    def learn_from_training_data(self, train: Dataset) -> None:
        """Remember what the training data teaches the task beyond labels; nothing by default."""
        return None

    # Model and tokenizer.

    def tokenizer_options(self, tokenizer: PreTrainedTokenizerBase) -> dict:
        """Keyword arguments to reload this (fast) tokenizer with, for this task; none by
        default."""
        return {}

    def prepare_model(self, model: Any, tokenizer: PreTrainedTokenizerBase) -> None:
        """Adapt a new model and its tokenizer to the task before training; nothing by default."""
        return None

    def new_tokens(self) -> list[str]:
        """The tokens prepare_model adds to the tokenizer: their embeddings start untrained, so
        a run that freezes the pretrained weights (--peft lora) still trains them; none by
        default."""
        return []

    # Tokenization and batches.

    @abc.abstractmethod
    def tokenize(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        label2id: dict[str, int] | None,
        max_seq_length: int,
        for_training: bool,
        map_options: dict | None = None,
    ) -> Dataset:
        """Model inputs plus `label_key` (unless label2id is None); only model and META_KEYS
        columns remain. `map_options` go to `datasets.Dataset.map` (cache file, fingerprint,
        workers)."""

    def encode_for_prediction(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int,
        map_options: dict | None = None,
    ) -> Dataset:
        """Model inputs of unlabelled data, for predict; by default tokenize() without labels."""
        return self.tokenize(dataset, tokenizer, None, max_seq_length, False, map_options)

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """Pads a list of tokenized examples into a batch; by default one label per example."""
        from transformers import DataCollatorWithPadding

        return MetaCollator(DataCollatorWithPadding(tokenizer), tokenizer)

    def length_report(self, max_seq_length: int, num_train: int, eval_raw: Dataset | None) -> dict:
        """After tokenize(): counts of examples that did not fit max_seq_length, as train_* and
        eval_* results (logged where not zero, see log_length_report); none by default."""
        return {}

    # Metrics and predictions.

    @abc.abstractmethod
    def compute_metrics(
        self,
        predictions: list[np.ndarray],
        labels: list[np.ndarray],
        id2label: dict[int, str],
        example_ids: list | None = None,
    ) -> dict[str, float]:
        """Metrics over all eval rows (-100 = ignore); rows sharing an example id are windows of
        one example, in order."""

    @abc.abstractmethod
    def metric_names(self, labels: list[str]) -> list[str]:
        """Every metric compute_metrics returns for these labels, without the eval_ prefix."""

    def write_predictions(
        self,
        raw: Dataset,
        rows: dict,
        id2label: dict[int, str],
        handle: TextIO,
        source: PredictionInput,
    ) -> None:
        """Write the predictions of every example of `raw`, in input order, to `handle`;
        `source` says which file they came from and how it was read. By default one JSON
        line per example: its columns, `predicted_label` and `probability` (null where the
        example has no prediction)."""
        predicted = example_predictions(rows, id2label)
        for example_id in range(len(raw)):
            label, probability = predicted.get(example_id, (None, None))
            record = {**raw[example_id], "predicted_label": label, "probability": probability}
            handle.write(json_line(record))


def example_predictions(rows: dict, id2label: dict[int, str]) -> dict[int, tuple[str, float]]:
    """Example id -> (predicted label, probability) of gathered rows with one prediction per
    example."""
    ids = rows.get("example_id", rows.get("row_id", []))
    return {
        int(example_id): (id2label[int(label)], float(confidence))
        for example_id, label, confidence in zip(
            ids, rows.get("predictions", []), rows.get("confidence", []), strict=True
        )
    }


def log_length_report(
    stats: dict[str, int], messages: dict[str, str], lost: set[str] | None = None
) -> None:
    """Log each non-zero count of examples that did not fit max_seq_length: `messages[key]`,
    which says what became of them, as a warning where something was lost (the keys in `lost`;
    by default all), else as information."""
    for key, count in stats.items():
        if count:
            lossy = lost is None or key in lost
            logger.log(logging.WARNING if lossy else logging.INFO, messages[key])


class MetaCollator:
    """The task's collator for model inputs, plus the bookkeeping columns beside them: scalars
    (row and example ids) as tensors, per-token lists (word positions) padded with -100."""

    def __init__(self, collate, tokenizer):
        self.collate = collate
        self.pad_left = getattr(tokenizer, "padding_side", "right") == "left"

    def __call__(self, features: list[dict]) -> dict:
        import torch

        meta = {key: [f[key] for f in features] for key in META_KEYS if key in features[0]}
        batch = self.collate([{k: v for k, v in f.items() if k not in meta} for f in features])
        length = batch["input_ids"].shape[1]
        for key, values in meta.items():
            if isinstance(values[0], list):
                values = [self._pad(value, length) for value in values]
            batch[key] = torch.tensor(values)
        return batch

    def _pad(self, value: list, length: int) -> list:
        padding = [IGNORE_INDEX] * (length - len(value))
        return padding + value if self.pad_left else value + padding
