"""NER metrics: entity-level precision, recall and F1 (overall and per type) and token accuracy,
by seqeval."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accel_trainer.tasks.base import IGNORE_INDEX
from accel_trainer.tasks.ner.tags import seqeval_tag

if TYPE_CHECKING:
    import numpy as np

REPORT_AVERAGES = ("micro avg", "macro avg", "weighted avg")  # seqeval's rows beside the types


def compute_metrics(
    predictions: list[np.ndarray],
    labels: list[np.ndarray],
    id2label: dict[int, str],
    example_ids: list | None,
    tag_scheme: str,
) -> dict[str, float]:
    """seqeval over sentences; the windows of one sentence (same example id, in order) are
    joined back before entities are read; IOBES tags are read in seqeval's strict mode."""
    from seqeval.metrics import accuracy_score, classification_report
    from seqeval.scheme import IOBES

    if example_ids is None:
        example_ids = list(range(len(predictions)))
    sentences: dict[int, tuple[list[str], list[str]]] = {}
    for example_id, predicted, gold in zip(example_ids, predictions, labels, strict=True):
        keep = gold != IGNORE_INDEX
        true, pred = sentences.setdefault(int(example_id), ([], []))
        true.extend(id2label[int(i)] for i in gold[keep])
        pred.extend(id2label[int(i)] for i in predicted[keep])
    true_tags = [[seqeval_tag(tag) for tag in true] for true, _ in sentences.values()]
    predicted_tags = [[seqeval_tag(tag) for tag in pred] for _, pred in sentences.values()]
    strict = {"mode": "strict", "scheme": IOBES} if tag_scheme == "iobes" else {}
    report = classification_report(
        true_tags, predicted_tags, output_dict=True, zero_division=0, **strict
    )
    micro = report["micro avg"]
    metrics = {
        "precision": float(micro["precision"]),
        "recall": float(micro["recall"]),
        "f1": float(micro["f1-score"]),
        "accuracy": float(accuracy_score(true_tags, predicted_tags)),
    }
    for entity_type, scores in report.items():
        if entity_type not in REPORT_AVERAGES:
            metrics[f"f1_{entity_type}"] = float(scores["f1-score"])
    # A type absent from this evaluation scores 0, so every evaluation has the same keys
    # (--metric_for_best_model f1_TYPE is checked against them before training).
    for name in metric_names(list(id2label.values()), tag_scheme):
        metrics.setdefault(name, 0.0)
    return metrics


def metric_names(labels: list[str], tag_scheme: str) -> list[str]:
    """Every metric compute_metrics returns for these labels, without the eval_ prefix."""
    from seqeval.metrics.sequence_labeling import get_entities
    from seqeval.scheme import IOBES

    # The type seqeval reads from one tag: strict IOBES mode and the default mode each
    # parse it their own way (B-A- is type A in one, A- in the other).
    if tag_scheme == "iobes":
        types = {IOBES(seqeval_tag(label)).tag for label in labels if label != "O"}
    else:
        types = {get_entities([seqeval_tag(label)])[0][0] for label in labels if label != "O"}
    return ["precision", "recall", "f1", "accuracy", *(f"f1_{t}" for t in sorted(types))]
