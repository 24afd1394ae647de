"""Relation `predict` output: one JSON line per input example with its predicted relation."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, TextIO

from accel_trainer.tasks.base import PredictionInput, example_predictions
from accel_trainer.tasks.files import json_line

if TYPE_CHECKING:
    from datasets import Dataset


def write_predictions(
    raw: Dataset,
    rows: dict,
    id2label: dict[int, str],
    handle: TextIO,
    source: PredictionInput,
    marked_text: Callable[[dict], str],
) -> None:
    """One JSON line per input example: the input record (SemEval: id and text, marked by
    `marked_text`) plus `predicted_label` and `probability`; null for examples that do not fit
    max_seq_length."""
    predicted = example_predictions(rows, id2label)
    for example_id, line in enumerate(raw["line"]):
        example = raw[example_id]
        record = (
            json.loads(example["record"])
            if example.get("record")
            else {
                **({"id": example["id"]} if example.get("id") is not None else {}),
                "line": line,
                "text": marked_text(example),
            }
        )
        label, probability = predicted.get(example_id, (None, None))
        record["predicted_label"] = label
        record["probability"] = probability
        if label is None:
            record["error"] = (
                f"the entities lie too far apart for --max_seq_length {source.max_seq_length}"
            )
        handle.write(json_line(record))
