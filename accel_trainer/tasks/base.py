"""The Task protocol: everything the trainer and the commands need to know about one task."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


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
    ) -> Dataset:
        """Model inputs plus `label_key`; only model columns remain."""

    def collator(self, tokenizer: PreTrainedTokenizerBase) -> Any:
        """Pads a list of tokenized examples into a batch."""

    def compute_metrics(
        self, predictions: list[np.ndarray], labels: list[np.ndarray], id2label: dict[int, str]
    ) -> dict[str, float]:
        """Metrics over all eval examples; predictions and labels are per example, -100 = ignore."""
