"""Relation metrics: micro precision, recall and F1 and macro F1 over the positive relations, and
accuracy over all, by scikit-learn; for SemEval-2010 Task 8's labels also the task's official
score, as its scorer (semeval2010_task8_scorer-v1.2.pl) computes it."""

from __future__ import annotations

import re
from collections import Counter
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import numpy as np

RE_METRICS = ["precision", "recall", "f1", "macro_f1", "accuracy"]
SEMEVAL2010_RELATIONS = (
    "Cause-Effect",
    "Component-Whole",
    "Content-Container",
    "Entity-Destination",
    "Entity-Origin",
    "Instrument-Agency",
    "Member-Collection",
    "Message-Topic",
    "Product-Producer",
)
SEMEVAL2010_OTHER = "Other"
# Its 19 labels: each relation in both directions, and Other.
SEMEVAL2010_LABELS = frozenset(
    [f"{name}({direction})" for name in SEMEVAL2010_RELATIONS for direction in ("e1,e2", "e2,e1")]
    + [SEMEVAL2010_OTHER]
)
SEMEVAL2010_OFFICIAL = "semeval2010_official_f1"
DIRECTION = re.compile(r"\(e[12],e[12]\)$")


def is_semeval2010(labels) -> bool:
    """Whether `labels` are SemEval-2010 Task 8's 19, whatever file format they came in."""
    return set(labels) == SEMEVAL2010_LABELS


def metric_names(labels: list[str]) -> list[str]:
    """The metrics compute_metrics returns for a model of these labels."""
    return RE_METRICS + ([SEMEVAL2010_OFFICIAL] if is_semeval2010(labels) else [])


def semeval2010_official_f1(gold: list[str], predicted: list[str | None]) -> float:
    """SemEval-2010 Task 8's official score: the macro-averaged F1 over the relations of `gold`
    other than Other, direction taken into account ((9+1)-way). A prediction of the right
    relation in the wrong direction is wrong, and counts against that relation's precision; a
    prediction of None is a skipped example (the scorer allows them), which only lowers recall."""
    answers = Counter(DIRECTION.sub("", label) for label in gold)
    proposed, correct, wrong_direction = Counter(), Counter(), Counter()
    for gold_label, label in zip(gold, predicted, strict=True):
        if label is None:
            continue
        relation = DIRECTION.sub("", label)
        if label == gold_label:
            correct[relation] += 1
        elif relation == DIRECTION.sub("", gold_label):
            wrong_direction[relation] += 1
            continue
        proposed[relation] += 1
    scores = []
    for relation, count in answers.items():
        if relation == SEMEVAL2010_OTHER:
            continue
        made = proposed[relation] + wrong_direction[relation]
        precision = correct[relation] / made if proposed[relation] else 0.0
        recall = correct[relation] / count
        total = precision + recall
        scores.append(2 * precision * recall / total if total else 0.0)
    return sum(scores) / len(scores) if scores else 0.0


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
    scores = {
        "precision": float(precision),
        "recall": float(recall),
        "f1": float(f1),
        "macro_f1": float(macro_f1),
        "accuracy": float(accuracy_score(gold, predicted)),
    }
    if is_semeval2010(id2label.values()):
        names = [id2label[i] for i in gold], [id2label[i] for i in predicted]
        scores[SEMEVAL2010_OFFICIAL] = semeval2010_official_f1(*names)
    return scores
