"""Relation metrics: micro precision, recall and F1 and macro F1 over the positive relations, and
accuracy over all, by scikit-learn."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RE_METRICS = ["precision", "recall", "f1", "macro_f1", "accuracy"]


def compute_metrics(
    predictions: list[np.ndarray],
    labels: list[np.ndarray],
    id2label: dict[int, str],
    negative_label: str | None,
) -> dict[str, float]:
    """Micro P/R/F1 and macro F1 over the positive labels (all but --negative_label), and
    accuracy over all, by scikit-learn."""
    from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

    gold = [int(label) for label in labels]
    predicted = [int(label) for label in predictions]
    positive = sorted(i for i, label in id2label.items() if label != negative_label)
    precision, recall, f1, _ = precision_recall_fscore_support(
        gold, predicted, labels=positive, average="micro", zero_division=0
    )
    macro_f1 = f1_score(gold, predicted, labels=positive, average="macro", zero_division=0)
    return {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "macro_f1": float(macro_f1),
        "accuracy": float(accuracy_score(gold, predicted)),
    }
