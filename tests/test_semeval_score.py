"""SemEval-2010 Task 8's official score (macro F1 over the 9 relations, direction counted),
checked against the task scorer's own sample files and results (semeval2010_task8_scorer-v1.2:
answer_key1.txt / proposed_answer1.txt give 64.09%, answer_key3.txt / proposed_answer3.txt
11.11%); and reported beside the other relation metrics only for SemEval's 19 labels."""

import numpy as np
import pytest

from accel_trainer.tasks.re import ReTask
from accel_trainer.tasks.re.metrics import SEMEVAL2010_LABELS, semeval2010_official_f1

SHORT = {
    "CE": "Cause-Effect", "CW": "Component-Whole", "CC": "Content-Container",
    "ED": "Entity-Destination", "EO": "Entity-Origin", "IA": "Instrument-Agency",
    "MC": "Member-Collection", "MT": "Message-Topic", "PP": "Product-Producer",
}  # fmt: skip


def labels(text: str) -> list[str]:
    """'CW21 O IA21' -> ['Component-Whole(e2,e1)', 'Other', 'Instrument-Agency(e2,e1)']."""
    return [
        "Other" if word == "O" else f"{SHORT[word[:2]]}(e{word[2]},e{word[3]})"
        for word in text.split()
    ]


def aligned(key: str, proposed: dict[int, str]) -> tuple[list[str], list[str | None]]:
    """The key's labels and the proposed ones by sentence id (1, 2, ...); None where the
    proposed file skips an id."""
    gold = labels(key)
    return gold, [
        labels(proposed[i])[0] if i in proposed else None for i in range(1, len(gold) + 1)
    ]


KEY_1 = (
    "CW21 O IA21 O MC12 O CE21 ED12 CC12 ED12 MC12 O MT12 CE21 IA21 MT12 IA21 PP21 CW21 MC21 "
    "EO12 MC21 CE12 O MC21 O CE12 MT12 MT12 CW12 MT21 CE21 PP12 ED12 CW12 EO12 O CW21 CE12 IA21"
)
PROPOSED_1 = dict(enumerate(  # the ids 1-30 of proposed_answer1.txt, in id order
    "O IA21 O O O O O ED12 CC12 ED12 MC12 O MT12 CE21 IA21 MT12 IA21 PP21 CW12 MC21 EO12 O CE12 "
    "MC21 MC21 O CE21 MT21 MT12 CW12".split(), start=1))  # fmt: skip
KEY_3 = "CW21 O IA21 O MC12 O CE21 ED12 CC12 ED12"
PROPOSED_3 = {10: "ED12", 6: "MT12", 7: "CE12", 1: "O", 5: "IA21", 3: "O", 2: "CE12"}


@pytest.mark.parametrize(
    "key, proposed, official",
    [(KEY_1, PROPOSED_1, 64.09), (KEY_3, PROPOSED_3, 11.11)],
)
def test_the_official_score_equals_the_scorers_on_its_sample_files(key, proposed, official):
    gold, predicted = aligned(key, proposed)
    assert round(100 * semeval2010_official_f1(gold, predicted), 2) == official


def test_a_relation_in_the_wrong_direction_is_wrong_and_costs_precision():
    gold = labels("CE12 CE12 O")
    # CE12 once right, once as CE21: precision 1/2, recall 1/2
    assert semeval2010_official_f1(gold, labels("CE12 CE21 O")) == pytest.approx(0.5)
    # the same predictions, direction ignored, would score 1.0
    assert semeval2010_official_f1(gold, labels("CE12 CE12 O")) == 1.0


def test_re_metrics_add_the_official_score_for_semevals_labels_only():
    id2label = dict(enumerate(sorted(SEMEVAL2010_LABELS)))
    label2id = {label: i for i, label in id2label.items()}
    gold = labels("CE12 CE21 MT12 O O IA21")
    predicted = labels("CE12 CE12 MT12 O MT12 IA21")
    task = ReTask(negative_label="Other")
    as_ids = [np.array(label2id[label]) for label in gold]
    scores = task.compute_metrics([np.array(label2id[p]) for p in predicted], as_ids, id2label)
    assert scores["semeval2010_official_f1"] == pytest.approx(
        semeval2010_official_f1(gold, predicted)
    )
    # the macro F1 over the 18 directed labels is another number
    assert scores["macro_f1"] != pytest.approx(scores["semeval2010_official_f1"])
    assert task.metric_names(list(id2label.values()))[-1] == "semeval2010_official_f1"
    other_labels = ["works_for", "born_in", "no_relation"]
    assert "semeval2010_official_f1" not in task.metric_names(other_labels)
    small = {0: "works_for", 1: "no_relation"}
    plain = ReTask(negative_label="no_relation").compute_metrics(
        [np.array(0), np.array(1)], [np.array(0), np.array(0)], small
    )
    assert "semeval2010_official_f1" not in plain
