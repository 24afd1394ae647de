"""The Task protocol: everything the trainer and the commands need to know about one task."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

import torch

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


IGNORE_INDEX = -100
# Row bookkeeping that travels beside the model inputs and is gathered with the predictions:
# the row's place in its dataset, the example it belongs to, and per sub-token word positions.
META_KEYS = ("row_id", "example_id", "word_index")


@dataclass
class TaskOptions:
    """The options a task owns (flags of its own on the command line); none by default."""

    def problems(self) -> list[str]:
        """Every invalid option, as one message each."""
        return []


class Task(Protocol):
    """A task plugs into the trainer by composition: the trainer only calls these."""

    name: str
    label_key: str  # the batch key holding the gold labels: "labels" or "label"
    auto_model_class_name: str  # e.g. "AutoModelForTokenClassification"

    def read(self, path: str, what: str, data_format: str, tag_scheme: str) -> Dataset:
        """Read one labelled split from a local file; `what` names it in errors."""

    def label_list(self, train: Dataset) -> list[str]:
        """The sorted, stable label list of the training data."""

    def check_labels(self, dataset: Dataset, labels: list[str], what: str) -> None:
        """Raise DataError naming the first example whose label is not in `labels`."""

    def tokenize(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        label2id: dict[str, int],
        max_seq_length: int,
        for_training: bool,
        map_options: dict | None = None,
    ) -> Dataset:
        """Model inputs plus `label_key`; only model columns remain. `map_options` go to
        `datasets.Dataset.map` (cache file, fingerprint, workers)."""

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """Pads a list of tokenized examples into a batch."""

    def compute_metrics(
        self,
        predictions: list[np.ndarray],
        labels: list[np.ndarray],
        id2label: dict[int, str],
        example_ids: list | None = None,
    ) -> dict[str, float]:
        """Metrics over all eval rows (-100 = ignore); rows sharing an example id are windows of
        one example, in order."""


class MetaCollator:
    """The task's collator for model inputs, plus the bookkeeping columns beside them: scalars
    (row and example ids) as tensors, per-token lists (word positions) padded with -100."""

    def __init__(self, collate, tokenizer):
        self.collate = collate
        self.pad_left = getattr(tokenizer, "padding_side", "right") == "left"

    def __call__(self, features: list[dict]) -> dict:
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
