"""Input checks of the built-in tasks: strict SemEval-2010 records, files that are plainly not
CoNLL given to --task ner, unprefixed tags under --tag_scheme none, and metric names."""

import json
import os

import numpy as np
import pytest

from accel_trainer.errors import DataError
from accel_trainer.tasks.ner import NerTask
from accel_trainer.tasks.re import ReTask

SEMEVAL_DIR = "/work/shared/data/semeval2010_task8"
ID_1 = '1\t"The <e1>child</e1> was wrapped into the <e2>cradle</e2>."'
ID_2 = '2\t"The <e2>author</e2> of a keygen uses a <e1>disassembler</e1>."'
LABELS = ["Entity-Destination(e1,e2)", "Instrument-Agency(e2,e1)"]


def write(tmp_path, name: str, lines: list[str], ending: str = "\n") -> str:
    path = tmp_path / name
    path.write_bytes(ending.join(lines).encode())
    return str(path)


def read_error(task, path: str, what: str = "--train_file", **options) -> str:
    with pytest.raises(DataError) as error:
        task.read(path, what, options.pop("data_format", "auto"), **options)
    return str(error.value)


# SemEval-2010 Task 8 records


@pytest.mark.parametrize(
    "lines, ending",
    [
        ([ID_1, LABELS[0], "Comment:", "", ID_2, LABELS[1], "Comment: tail first", "", ""], "\n"),
        ([ID_1, LABELS[0], "Comment:", "", ID_2, LABELS[1], "Comment: tail first", ""], "\r\n"),
        ([ID_1, LABELS[0], "Comment:", "", ID_2, LABELS[1], "Comment:"], "\n"),  # no final blank
        ([ID_1, LABELS[0], "Comment:", "", "", "", ID_2, LABELS[1], "Comment:", ""], "\n"),
        ([ID_1 + "  ", LABELS[0] + " \t", "Comment:  ", " ", ID_2, LABELS[1], "Comment:"], "\n"),
        (["\ufeff" + ID_1, LABELS[0], "Comment:", "", ID_2, LABELS[1], "Comment:", ""], "\r\n"),
    ],
    ids=["lf", "crlf", "no-final-blank", "three-blanks", "trailing-space", "bom-crlf"],
)
def test_well_formed_semeval_variants_read_the_same(tmp_path, lines, ending):
    path = write(tmp_path, "TRAIN_FILE.TXT", lines, ending)
    data = ReTask().read(path, "--train_file", "auto")
    assert data["label"] == LABELS
    assert data["text"] == [
        "The child was wrapped into the cradle.",
        "The author of a keygen uses a disassembler.",
    ]
    assert data["line"][0] == 1 and data["line"][1] == lines.index(ID_2) + 1


def test_record_without_relation_line_does_not_take_the_comment_as_label(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, "Comment:", "", ID_2, LABELS[1], "Comment:", ""])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 2 should be the relation line of record 1: got 'Comment:'. "
        "Give each record its relation, e.g. Cause-Effect(e1,e2) or Other."
    )
    # Not for predict either: a Comment: line where the relation belongs is a broken record.
    assert read_error(ReTask(), path, "--input_file", labelled=False) == (
        f"--input_file {path} line 2 should be the relation line of record 1: got 'Comment:'. "
        "Give each record its relation, e.g. Cause-Effect(e1,e2) or Other. For predict, the "
        "id lines alone will do."
    )


def test_record_without_comment_and_blank_line_does_not_swallow_the_next(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, LABELS[0], ID_2, LABELS[1], "Comment:", ""])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 3 should be the Comment: line of record 1: got "
        f"{ID_2!r}. Keep the 4-line records intact."
    )
    assert "line 3 should be the Comment: line of record 1" in read_error(
        ReTask(), path, labelled=False
    )


def test_record_without_blank_line_is_reported(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, LABELS[0], "Comment:", ID_2, LABELS[1], "Comment:"])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 4 should be the closing blank line of record 1: got "
        f"{ID_2!r}. Keep the 4-line records intact."
    )


def test_record_with_a_sentence_for_relation_is_reported(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, "the child is in the cradle", "Comment:", ""])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 2 should be the relation line of record 1: got 'the child is "
        "in the cradle'. Keep the 4-line records intact. The relation is one label, e.g. "
        "Cause-Effect(e1,e2) or Other."
    )


def test_labelled_record_cut_short_at_the_end_of_the_file(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, LABELS[0], "Comment:", "", ID_2])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 6 should be the relation line of record 2: got the end of "
        "the file. Keep the 4-line records intact. Sentences without a relation (as in "
        "TEST_FILE.txt) are for predict."
    )
    path = write(tmp_path, "train2.txt", [ID_1, LABELS[0]])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 3 should be the Comment: line of record 1: got the end of "
        "the file. Keep the 4-line records intact."
    )


def test_extra_line_after_a_record_is_not_a_record_start(tmp_path):
    path = write(tmp_path, "train.txt", [ID_1, LABELS[0], "Comment:", "", "more comment", ""])
    assert read_error(ReTask(), path) == (
        f'--train_file {path} line 5 is not a SemEval-2010 record start (id<TAB>"sentence"): '
        "got 'more comment'. Check --data_format, and that each record is an id line, a "
        "relation line, a Comment: line and a blank line."
    )


def test_unlabelled_semeval_may_be_id_lines_or_full_records(tmp_path):
    # The official TEST_FILE.txt: id lines only, one after the other, CRLF.
    path = write(tmp_path, "TEST_FILE.txt", [ID_1, ID_2, ""], "\r\n")
    data = ReTask().read(path, "--input_file", "auto", labelled=False)
    assert data["label"] == [None, None] and data["line"] == [1, 2]
    assert data["text"][1] == "The author of a keygen uses a disassembler."
    assert read_error(ReTask(), path).startswith(
        f"--train_file {path} line 2 should be the relation line of record 1: got {ID_2!r}."
    )
    # Full records (TEST_FILE_FULL.TXT) and id-only ones mixed.
    path = write(tmp_path, "mixed.txt", [ID_1, "", ID_2, LABELS[1], "Comment:"])
    data = ReTask().read(path, "--input_file", "auto", labelled=False)
    assert data["label"] == [None, LABELS[1]] and data["line"] == [1, 3]


@pytest.mark.skipif(not os.path.isdir(SEMEVAL_DIR), reason="the SemEval-2010 release is absent")
def test_the_official_release_files_read(tmp_path):
    train = f"{SEMEVAL_DIR}/SemEval2010_task8_training/TRAIN_FILE.TXT"
    full = f"{SEMEVAL_DIR}/SemEval2010_task8_testing_keys/TEST_FILE_FULL.TXT"
    train_data = ReTask().read(train, "--train_file", "auto")
    test_data = ReTask().read(full, "--validation_file", "auto")
    assert (len(train_data), len(test_data)) == (8000, 2717)
    assert len(set(train_data["label"])) == 19 and "Other" in train_data["label"]
    # TEST_FILE.txt (not in the copy) is TEST_FILE_FULL.TXT's id lines; also try the real one.
    with open(full) as handle:
        ids = handle.read().split("\n")[0::4][:2717]
    official = f"{SEMEVAL_DIR}/SemEval2010_task8_testing/TEST_FILE.txt"
    candidates = [write(tmp_path, "TEST_FILE.txt", ids, "\r\n")]
    for path in candidates + [official] * os.path.exists(official):
        unlabelled = ReTask().read(path, "--input_file", "auto", labelled=False)
        assert len(unlabelled) == 2717 and set(unlabelled["label"]) == {None}
        assert unlabelled["text"] == test_data["text"]


# Files that are plainly not CoNLL, given to --task ner

CONLL_ADVICE = "or pass --tag_scheme none to skip this check."


@pytest.mark.parametrize("scheme", ["bio", "none"])
def test_json_lines_named_txt_is_not_read_as_conll(tmp_path, scheme):
    record = {"tokens": ["John", "visited"], "ner_tags": ["B-PER", "O"]}
    path = write(tmp_path, "train.txt", [json.dumps(record)])
    assert read_error(NerTask(tag_scheme=scheme), path) == (
        f"--train_file {path} line 1 is a JSON object, not a CoNLL token line: got "
        f"{json.dumps(record)!r}. Pass --data_format jsonl to read JSON lines (or name the file "
        ".jsonl)."
    )
    assert NerTask().read(path, "x", "jsonl")["tokens"] == [["John", "visited"]]


@pytest.mark.parametrize("scheme", ["bio", "none"])
def test_chemprot_json_lines_given_to_ner_suggest_task_re(tmp_path, scheme):
    """As in ChemProt's train.txt: JSON lines named .txt, one marked sentence and a label."""
    record = {"text": "<< Aspirin >> blocks [[ COX-2 ]] .", "label": "INHIBITOR", "metadata": []}
    path = write(tmp_path, "train.txt", [json.dumps(record)])
    got = repr(json.dumps(record)[:80])
    assert read_error(NerTask(tag_scheme=scheme), path) == (
        f"--train_file {path} line 1 is a JSON object with keys ['label', 'metadata', 'text'], "
        f"like a relation extraction example, not a CoNLL token line: got {got}. Use --task re "
        "for relation files."
    )
    assert read_error(NerTask(), path, data_format="jsonl") == (
        f"--train_file {path} line 1 lacks 'tokens' or 'ner_tags': got keys ['label', "
        "'metadata', 'text'], like a relation extraction example. Use --task re for relation "
        'files; NER needs {"tokens": [...], "ner_tags": [...]} per line.'
    )
    assert "Use --task re" in read_error(NerTask(), path, "--input_file", labelled=False)


@pytest.mark.parametrize("scheme", ["bio", "none"])
def test_semeval_file_given_to_ner_suggests_task_re(tmp_path, scheme):
    path = write(tmp_path, "TRAIN_FILE.TXT", [ID_1, LABELS[0], "Comment:", ""])
    assert read_error(NerTask(tag_scheme=scheme), path) == (
        f"--train_file {path} line 1 is the first line of a SemEval-2010 relation record "
        f'(id<TAB>"sentence"), not a CoNLL token line: got {ID_1!r}. Use --task re for relation '
        "files."
    )


def test_marked_sentence_per_line_suggests_task_re(tmp_path):
    line = "<< Aspirin >> blocks [[ COX-2 ]] in cells .\tINHIBITOR"
    path = write(tmp_path, "chemprot.tsv", [line])
    assert read_error(NerTask(), path) == (
        f"--train_file {path} line 1 has entity markers << >> [[ ]] in a line of 11 columns, "
        f"like a relation extraction example with one sentence per line, not a CoNLL token "
        f"line: got {line!r}. Use --task re for relation files; NER reads one token and its "
        "tag per line."
    )
    line = "The <e1>child</e1> slept in the <e2>cradle</e2>\tOther"
    path = write(tmp_path, "semeval.tsv", ["John\tB-PER", "", line])
    assert read_error(NerTask(), path).startswith(
        f"--train_file {path} line 3 has entity markers <e1> </e1> <e2> </e2> in a line of 7 "
        "columns, like a relation extraction example"
    )


def test_plain_sentence_per_line_is_not_taken_for_a_bad_tag(tmp_path):
    line = "16357751.T1.T2\tJohn Smith moved to Paris with his family .\tLIVES_IN"
    path = write(tmp_path, "re.tsv", [line])
    assert read_error(NerTask(), path) == (
        f"--train_file {path} line 1 has 11 whitespace-separated columns, like a whole sentence "
        f"on one line, not a CoNLL token line: got {line!r}. NER reads one token and its tag per "
        "line, with a blank line between sentences; use --task re for relation files, "
        "--data_format jsonl for JSON lines, or for predict --data_format text for plain text."
    )


@pytest.mark.parametrize(
    "line, tag",
    [("John PER", "PER"), ("EU NNP B-NP ORG", "ORG"), ("EU\tNNP\tB-NP\tI-NP\tU-ORG", "U-ORG")],
)
def test_conll_line_with_a_bad_tag_keeps_the_tag_scheme_advice(tmp_path, line, tag):
    path = write(tmp_path, "train.conll", ["Peter B-PER", line])
    assert read_error(NerTask(), path) == (
        f"--train_file {path} line 2 has a tag that is not valid BIO: got {tag!r}. Use O, "
        f"B-TYPE, I-TYPE, {CONLL_ADVICE}"
    )


def test_brace_marker_and_quote_tokens_are_still_conll(tmp_path):
    lines = ["{ O", "<< B-OP", ">> I-OP", "[[ O", "]] O", '" O', "} O"]
    path = write(tmp_path, "code.conll", lines)
    data = NerTask(tag_scheme="none").read(path, "--train_file", "auto")
    assert data["tokens"] == [["{", "<<", ">>", "[[", "]]", '"', "}"]]
    assert data["ner_tags"] == [["O", "B-OP", "I-OP", "O", "O", "O", "O"]]
    # A SemEval-like id line among them is a line of other columns, not a record or a tag
    path = write(tmp_path, "code.conll", [*lines[:5], '1\t"a b"', "} O"])
    assert read_error(NerTask(tag_scheme="none"), path).startswith(
        f"--train_file {path} line 6 has 3 columns where line 1 has 2: got '1\\t\"a b\"'."
    )


# Unprefixed tags under --tag_scheme none


def conll(tmp_path, sentences: list[list[str]]) -> str:
    """A CoNLL file of 'token tag' sentences; tokens are w0, w1, ..."""
    blocks = ["\n".join(f"w{i} {tag}" for i, tag in enumerate(tags)) for tags in sentences]
    path = tmp_path / "train.conll"
    path.write_text("\n\n".join(blocks) + "\n")
    return str(path)


def score(task: NerTask, gold: list[list[str]], predicted: list[list[str]], labels: list[str]):
    """compute_metrics on word-level tags, one row per sentence, as the trainer passes them."""
    label2id = {label: i for i, label in enumerate(labels)}
    id2label = dict(enumerate(labels))
    rows = [np.array([label2id[t] for t in tags]) for tags in gold]
    predictions = [np.array([label2id[t] for t in tags]) for tags in predicted]
    return task.compute_metrics(predictions, rows, id2label)


def test_unprefixed_tags_are_whole_types_and_runs_are_one_entity(tmp_path):
    task = NerTask(tag_scheme="none")
    gold = [["PER", "PER", "O", "LOC"], ["LOC", "O", "PER"]]
    data = task.read(conll(tmp_path, gold), "--train_file", "auto")
    labels = task.label_list(data)
    assert labels == ["LOC", "O", "PER"]
    # Gold: PER(0-1), LOC(3); LOC(0), PER(2). Predicted: PER(0), LOC(3); LOC(0), LOC(2).
    predicted = [["PER", "O", "O", "LOC"], ["LOC", "O", "LOC"]]
    metrics = score(task, gold, predicted, labels)
    assert metrics == pytest.approx(
        {
            "precision": 2 / 4,
            "recall": 2 / 4,
            "f1": 0.5,
            "accuracy": 5 / 7,
            "f1_LOC": 2 * (2 / 3) * 1 / (2 / 3 + 1),  # P 2/3, R 2/2
            "f1_PER": 0.0,
        }
    )
    assert score(task, gold, gold, labels)["f1"] == 1.0


def test_a_single_unprefixed_type_such_as_ate():
    task = NerTask(tag_scheme="none")
    gold = [["ATE", "ATE", "O", "ATE", "O"]]  # two aspect terms: 0-1 and 3
    metrics = score(task, gold, [["ATE", "O", "O", "ATE", "O"]], ["ATE", "O"])
    assert metrics == pytest.approx(
        {"precision": 0.5, "recall": 0.5, "f1": 0.5, "accuracy": 0.8, "f1_ATE": 0.5}
    )


def test_prefixed_tags_under_scheme_none_score_as_under_bio():
    gold = [["B-PER", "I-PER", "O", "B-LOC"], ["B-LOC", "I-LOC", "O"]]
    predicted = [["B-PER", "I-PER", "O", "O"], ["B-LOC", "B-LOC", "O"]]
    labels = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    expected = score(NerTask(), gold, predicted, labels)
    assert score(NerTask(tag_scheme="none"), gold, predicted, labels) == expected
    # PER right; LOC(3) missed; LOC(0-1) predicted as LOC(0) and LOC(1): P 1/3, R 1/3.
    assert expected["precision"] == pytest.approx(1 / 3)
    assert expected["recall"] == pytest.approx(1 / 3)
    assert sorted(expected) == ["accuracy", "f1", "f1_LOC", "f1_PER", "precision", "recall"]


# metric_names


@pytest.mark.parametrize(
    "scheme, labels, gold",
    [
        ("bio", ["B-LOC", "B-PER", "I-PER", "O"], [["B-PER", "I-PER", "O", "B-LOC"]]),
        ("none", ["ATE", "O", "PER"], [["ATE", "ATE", "O", "PER"]]),
        ("none", ["B-MISC", "I-MISC", "LOC", "O"], [["B-MISC", "I-MISC", "O", "LOC"]]),
        ("iobes", ["B-ORG", "E-ORG", "O", "S-PER"], [["B-ORG", "E-ORG", "O", "S-PER"]]),
    ],
)
def test_ner_metric_names_are_the_keys_compute_metrics_returns(scheme, labels, gold):
    task = NerTask(tag_scheme=scheme)
    predicted = [["O"] + tags[1:] for tags in gold]
    metrics = score(task, gold, predicted, labels)
    assert task.metric_names(labels) == list(metrics)
    assert len(metrics) == 4 + len({t.split("-")[-1] for t in labels} - {"O"})


def test_a_type_absent_from_an_evaluation_still_has_its_f1_key_at_zero():
    task = NerTask()
    labels = ["B-LOC", "B-PER", "I-LOC", "I-PER", "O"]
    assert task.metric_names(labels) == [
        *["precision", "recall", "f1", "accuracy", "f1_LOC", "f1_PER"]
    ]
    metrics = score(task, [["B-PER", "O"]], [["B-PER", "O"]], labels)
    assert sorted(metrics) == sorted(task.metric_names(labels))
    assert metrics["f1_PER"] == 1.0 and metrics["f1_LOC"] == 0.0


def test_re_metric_names_are_the_keys_compute_metrics_returns():
    labels = ["Cause-Effect(e1,e2)", "Other"]
    task = ReTask(negative_label="Other")
    metrics = task.compute_metrics(
        np.array([0, 1, 1]), np.array([0, 0, 1]), dict(enumerate(labels))
    )
    assert task.metric_names(labels) == list(metrics)
    assert list(metrics) == ["precision", "recall", "f1", "macro_f1", "accuracy"]


# Files plainly in another format: named as such, with the flag that fixes it (exact texts)

CONLL_LINES = ["-DOCSTART- -X- -X- O", "", "EU NNP B-NP B-ORG", "rejects VBZ B-VP O", ""]
NER_RECORD = {"tokens": ["John", "visited"], "ner_tags": ["B-PER", "O"]}
RE_RECORD = {"text": "<e1> Tom </e1> works for <e2> Acme </e2> .", "label": "works_for"}


@pytest.mark.parametrize("name", ["train.tsv", "train.conll", "train.jsonl"])
def test_conll_given_to_task_re_suggests_task_ner(tmp_path, name):
    path = write(tmp_path, name, ["Selegiline\tB-Chemical", "-\tO", ""])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 1 is a CoNLL token line (a token and its tag), not a relation "
        "example: got 'Selegiline\\tB-Chemical'. Use --task ner (the default) for NER files."
    )
    path = write(tmp_path, "conll2003.txt", CONLL_LINES)
    assert read_error(ReTask(), path).startswith(
        f"--train_file {path} line 1 is a CoNLL token line (a token and its tag), not a relation "
        "example: got '-DOCSTART- -X- -X- O'."
    )
    assert read_error(ReTask(), path, data_format="semeval2010") == (
        f"--train_file {path} line 1 is a CoNLL token line (a token and its tag), not a "
        "SemEval-2010 record start: got '-DOCSTART- -X- -X- O'. Use --task ner (the default) for "
        "NER files."
    )


def test_ner_json_lines_given_to_task_re_suggest_task_ner(tmp_path):
    path = write(tmp_path, "train.jsonl", [json.dumps(NER_RECORD)])
    assert read_error(ReTask(), path) == (
        f"--train_file {path} line 1 has 'ner_tags' and no head or tail, like an NER example, "
        "not a relation example: got keys ['ner_tags', 'tokens']. Use --task ner (the default) "
        "for NER files."
    )


def test_conll_read_as_json_lines_suggests_data_format_conll(tmp_path):
    path = write(tmp_path, "train.jsonl", ["John\tB-PER", "visited\tO", ""])
    assert read_error(NerTask(), path) == (
        f"--train_file {path} line 1 is a CoNLL token line (a token and its tag), not a JSON "
        "object: got 'John\\tB-PER'. Pass --data_format conll to read it as CoNLL."
    )


def test_semeval_read_as_json_lines_suggests_its_format_or_task(tmp_path):
    path = write(tmp_path, "TRAIN_FILE.TXT", [ID_1, LABELS[0], "Comment:", ""])
    semeval = 'the first line of a SemEval-2010 relation record (id<TAB>"sentence")'
    assert read_error(ReTask(), path, data_format="jsonl") == (
        f"--train_file {path} line 1 is {semeval}, not a JSON object: got {ID_1!r}. Pass "
        "--data_format semeval2010, or leave --data_format out: it is detected."
    )
    assert read_error(NerTask(), path, data_format="jsonl") == (
        f"--train_file {path} line 1 is {semeval}, not a JSON object: got {ID_1!r}. Use --task "
        "re for relation files."
    )


def test_json_lines_read_as_semeval_suggest_data_format_jsonl(tmp_path):
    path = write(tmp_path, "train.jsonl", [json.dumps(RE_RECORD)])
    assert read_error(ReTask(), path, data_format="semeval2010") == (
        f"--train_file {path} line 1 is a JSON object, not a SemEval-2010 record start "
        f'(id<TAB>"sentence"): got {json.dumps(RE_RECORD)!r}. Pass --data_format jsonl, or '
        "leave --data_format out: it is detected."
    )


@pytest.mark.parametrize("task", [NerTask(), ReTask()], ids=["ner", "re"])
def test_a_json_array_is_not_json_lines(tmp_path, task):
    path = write(tmp_path, "train.json", ["[", json.dumps(NER_RECORD), "]"])
    assert read_error(task, path) == (
        f"--train_file {path} line 1 starts a JSON array, not a JSON object per line: got '['. "
        f"Write one object per line, e.g. `jq -c '.[]' {path} > {path[:-5]}.lines.jsonl`, and "
        "give that."
    )


def test_the_json_array_advice_never_writes_over_the_input(tmp_path):
    path = write(tmp_path, "train.jsonl", ["[", json.dumps(NER_RECORD), "]"])
    message = read_error(NerTask(), path)
    assert f"> {path[:-6]}.lines.jsonl`" in message and f"> {path}`" not in message


def test_valid_files_of_each_format_still_read(tmp_path):
    """The format checks only name what a failing first line is: valid files are untouched."""
    conll = write(tmp_path, "conll2003.txt", CONLL_LINES)
    assert NerTask().read(conll, "x", "auto")["tokens"] == [["EU", "rejects"]]
    tsv = write(tmp_path, "train.tsv", ["Selegiline\tB-Chemical", "-\tO", ""])
    assert len(NerTask().read(tsv, "x", "auto")) == 1
    tacred = {
        "tokens": ["Tom", "works", "for", "Acme"],
        "ner_tags": ["B-PER", "O", "O", "B-ORG"],  # extra NER columns beside head and tail
        "head": {"start": 0, "end": 1},
        "tail": {"start": 3, "end": 4},
        "label": "works_for",
    }
    records = write(tmp_path, "re.jsonl", [json.dumps(tacred), json.dumps(RE_RECORD)])
    assert ReTask().read(records, "x", "auto")["label"] == ["works_for", "works_for"]
    semeval = write(tmp_path, "TRAIN_FILE.TXT", [ID_1, LABELS[0], "Comment:", ""])
    assert ReTask().read(semeval, "x", "auto")["label"] == [LABELS[0]]
    ner = write(tmp_path, "ner.txt", [json.dumps(NER_RECORD)])
    assert NerTask().read(ner, "x", "jsonl")["tokens"] == [NER_RECORD["tokens"]]


@pytest.mark.parametrize(
    "task, name, lines, label, word",
    [
        ("ner", "all_o.conll", ["Anna O", "sings O", "", "Oslo O", ""], "O", "sentence"),
        ("re", "one.jsonl", [json.dumps({"text": "<e1>A</e1> met <e2>B</e2> .", "label": "met"})],
         "met", "example"),
    ],
)  # fmt: skip
def test_training_data_with_one_label_stops_before_any_work(
    tmp_path, capsys, no_model_building, task, name, lines, label, word
):
    from accel_trainer.cli import main

    path = write(tmp_path, name, lines)
    argv = ["train", "--task", task, "--train_file", path, "--output_dir", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err.strip() == (
        f"accel-trainer: error: --train_file {path} has one label only: got {label!r} on every "
        f"{word}. A model trained on it predicts {label!r} for everything: give training data "
        "with at least two different labels."
    )
    assert not os.path.exists(tmp_path / "o" / "model.safetensors")


def test_a_conll_line_with_other_columns_than_the_first_is_named(tmp_path):
    path = write(tmp_path, "train.conll", ["Anna B-PER", "sings O", "Blood type O", ""])
    assert read_error(NerTask(), path) == (
        f"--train_file {path} line 3 has 3 columns where line 1 has 2: got 'Blood type O'. Every "
        "line of a CoNLL sentence has the same columns, the token first and its tag last; fix that "
        "line."
    )
