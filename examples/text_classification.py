"""A third task written outside the package, through accel_trainer's public interface: plain
text classification (sentence -> label) from CSV (columns text,label) or JSON lines
({"text": ..., "label": ...}), scored by accuracy and macro F1.

Import this module, then use `--task text-classification` from Python:

    import text_classification  # registers the task
    from accel_trainer import AccelerateTrainer, TrainConfig

    config = TrainConfig.from_options(task="text-classification", train_file="train.csv",
                                      validation_file="dev.csv", output_dir="out")
    AccelerateTrainer.from_files(config).fit()

The saved folder loads in `transformers.pipeline("text-classification", model="out")`.
"""

from __future__ import annotations

import csv

from accel_trainer import Task, register_task
from accel_trainer.errors import DataError
from accel_trainer.tasks.files import json_lines  # JSON lines with file-and-line errors

CSV_COLUMNS = ("text", "label")


@register_task
class TextClassificationTask(Task):
    """One label per text, predicted from the [CLS] token by a sequence classification head."""

    name = "text-classification"
    label_key = "label"
    auto_model_class_name = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    data_formats = ("auto", "csv", "jsonl")
    token_level_labels = False  # one label per text: sorted micro-batches, never packed rows

    def read_examples(self, path: str, what: str, data_format: str, labelled: bool) -> list[dict]:
        file_format = data_format if data_format != "auto" else format_of(path)
        if file_format == "csv":
            return read_csv(path, what, labelled)
        if file_format == "jsonl":
            return read_jsonl(path, what, labelled)
        raise DataError(
            f"{what} is not in a format of --task text-classification: got --data_format "
            f"{data_format}. Give a .csv file (columns text,label) or JSON lines."
        )

    def example_labels(self, dataset) -> list[list[str]]:
        return [[label] for label in dataset["label"]]

    def words(self, dataset) -> list[list[str]]:
        return [text.split() for text in dataset["text"]]

    def tokenize(
        self, dataset, tokenizer, label2id, max_seq_length, for_training, map_options=None
    ):
        """Each text truncated to max_seq_length, with its label id where label2id is given."""

        def encode(batch: dict) -> dict:
            encoded = tokenizer(batch["text"], truncation=True, max_length=max_seq_length)
            if label2id is not None:
                encoded["label"] = [label2id[label] for label in batch["label"]]
            return encoded

        return dataset.map(
            encode, batched=True, remove_columns=dataset.column_names, **(map_options or {})
        )

    def compute_metrics(self, predictions, labels, id2label, example_ids=None) -> dict:
        """Accuracy and macro F1 over every label the model knows, by scikit-learn."""
        from sklearn.metrics import accuracy_score, f1_score

        gold = [int(label) for label in labels]
        predicted = [int(label) for label in predictions]
        known = sorted(id2label)
        return {
            "accuracy": float(accuracy_score(gold, predicted)),
            "macro_f1": float(
                f1_score(gold, predicted, labels=known, average="macro", zero_division=0)
            ),
        }

    def metric_names(self, labels: list[str]) -> list[str]:
        return ["accuracy", "macro_f1"]


def format_of(path: str) -> str:
    """'csv' for a .csv file, else 'jsonl'."""
    return "csv" if path.lower().endswith(".csv") else "jsonl"


def example(text, label, where: str, labelled: bool, line: int) -> dict:
    """One checked example; DataError naming `where` for an empty text or a missing label."""
    if not isinstance(text, str) or not text.strip():
        raise DataError(f"{where} has no text: got {text!r}. Give each example a sentence.")
    if labelled and (not isinstance(label, str) or not label.strip()):
        raise DataError(f"{where} has no label: got {label!r}. Give each example its label.")
    given = isinstance(label, str) and label.strip()
    return {"text": text, "label": label if given else None, "line": line}


def read_csv(path: str, what: str, labelled: bool) -> list[dict]:
    """Rows of a CSV file whose header names the columns text and label (label optional in
    unlabelled input)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        header = next(reader, [])
        needed = CSV_COLUMNS if labelled else CSV_COLUMNS[:1]
        if not set(needed) <= set(header):
            raise DataError(
                f"{what} line 1 is not a header with columns {','.join(needed)}: got "
                f"{','.join(header)!r}. Start the file with the line text,label."
            )
        examples = []
        start = reader.line_num + 1  # where the next row starts: a quoted text may span lines
        for row in reader:
            where = f"{what} line {start}"
            if row and len(row) != len(header):
                raise DataError(
                    f"{where} has {len(row)} columns, expected {len(header)} "
                    f"({','.join(header)}): got {','.join(row)[:80]!r}. Quote texts that hold "
                    "commas."
                )
            if row:
                fields = dict(zip(header, row, strict=True))
                examples.append(
                    example(fields["text"], fields.get("label"), where, labelled, start)
                )
            start = reader.line_num + 1
    return examples


def read_jsonl(path: str, what: str, labelled: bool) -> list[dict]:
    """One {"text": ..., "label": ...} object per non-blank line."""
    return [
        example(record.get("text"), record.get("label"), where, labelled, number)
        for number, where, record in json_lines(path, what)
    ]
