"""Relation extraction: reading marked text, token spans and SemEval files, windowing one marked
pair into max_seq_length, and the micro/macro metrics over positive relations."""

import numpy as np
import pytest
from datasets import Dataset

from accel_trainer.errors import DataError
from accel_trainer.models import build_wordpiece_tokenizer
from accel_trainer.tasks.re import ReTask
from accel_trainer.tasks.re.encoding import typed
from accel_trainer.tasks.re.formats import sniff_format
from accel_trainer.tasks.re.spans import SEMEVAL_MARKERS, parse_marked_text, parse_token_spans
from accel_trainer.tasks.windows import (
    sliding_windows,
    special_affixes,
    window_around,
    window_owners,
)
from tests.conftest import write_jsonl

CHEMPROT_MARKERS = ["<<", ">>", "[[", "]]"]
WHERE = "--train_file data.jsonl line 7"

SEMEVAL_RECORDS = (
    b'1\t"The <e1>child</e1> was wrapped into the <e2>cradle</e2>."\n'
    b"Entity-Destination(e1,e2)\n"
    b"Comment:\n"
    b"\n"
    b'2\t"The <e2>author</e2> of a keygen uses a <e1>disassembler</e1>."\r\n'
    b"Instrument-Agency(e2,e1)\r\n"
    b"Comment: the tail comes first\r\n"
    b"\r\n"
)


def spans_of(example: dict) -> tuple[str, str]:
    text = example["text"]
    return text[slice(*example["head"])], text[slice(*example["tail"])]


# parse_marked_text


def test_marked_text_gives_plain_text_and_exact_spans():
    example = parse_marked_text(
        "The <e1>child</e1> was wrapped into the <e2>cradle</e2>.", SEMEVAL_MARKERS, WHERE
    )
    assert example == {
        "text": "The child was wrapped into the cradle.",
        "head": [4, 9],
        "tail": [31, 37],
    }
    assert spans_of(example) == ("child", "cradle")


def test_tail_may_come_before_head():
    example = parse_marked_text(
        "The <e2>author</e2> of a keygen uses a <e1>disassembler</e1>.", SEMEVAL_MARKERS, WHERE
    )
    assert example["text"] == "The author of a keygen uses a disassembler."
    assert example["head"] == [30, 42] and example["tail"] == [4, 10]
    assert spans_of(example) == ("disassembler", "author")


def test_chemprot_markers_close_at_the_first_closing_marker_after_the_opening_one():
    # ">>" occurs as text before the head's opening marker and again after the head.
    example = parse_marked_text(
        "x >> y <<aspirin>> inhibits >> [[COX-2]] now", CHEMPROT_MARKERS, WHERE
    )
    assert example == {
        "text": "x >> y aspirin inhibits >> COX-2 now",
        "head": [7, 14],
        "tail": [27, 32],
    }
    assert spans_of(example) == ("aspirin", "COX-2")


def test_spaces_inside_markers_are_not_part_of_the_span():
    example = parse_marked_text("A <e1> big dog </e1> bit <e2>  Tom</e2>.", SEMEVAL_MARKERS, WHERE)
    assert example["text"] == "A  big dog  bit   Tom."
    assert example["head"] == [3, 10] and example["tail"] == [18, 21]
    assert spans_of(example) == ("big dog", "Tom")


@pytest.mark.parametrize(
    "text, phrase",
    [
        ("<e1>Alice</e1> works for Acme.", "has no tail marker '<e2>'"),
        ("Alice works for <e2>Acme</e2>.", "has no head marker '<e1>'"),
        (
            "<e1>Alice works for <e2>Acme</e2>.",
            "has an unbalanced head marker: '<e1>' without a '</e1>' after it",
        ),
        ("<e1>Alice</e1> and <e1>Bob</e1> work for <e2>Acme</e2>.", "marker '<e1>' twice"),
        ("<e1>Alice of <e2>Acme</e2></e1> laughed.", "has overlapping head and tail entities"),
        ("<e1>Alice of <e2>Acme</e1> Corp</e2> laughed.", "has overlapping head and tail"),
        ("<e1></e1> works for <e2>Acme</e2>.", "has an empty entity between markers"),
        ("<e1>   </e1> works for <e2>Acme</e2>.", "has an empty entity between markers"),
    ],
)
def test_bad_markers_are_reported_with_where_and_what_to_fix(text, phrase):
    with pytest.raises(DataError) as error:
        parse_marked_text(text, SEMEVAL_MARKERS, WHERE)
    message = str(error.value)
    assert message.startswith(WHERE)
    assert phrase in message


def test_missing_marker_names_the_markers_and_the_flag():
    with pytest.raises(DataError) as error:
        parse_marked_text("<<a>> and [b]", CHEMPROT_MARKERS, WHERE)
    assert str(error.value) == (
        f"{WHERE} has no tail marker '[[': got '<<a>> and [b]'. Mark both entities with << >> "
        "[[ ]] (the markers a model is trained with; train with --entity_markers to use the "
        "ones your files have)."
    )


# parse_token_spans


def test_token_spans_become_text_and_character_spans_with_types():
    record = {
        "tokens": ["Alice", "works", "for", "Acme", "Corp", "."],
        "head": {"start": 0, "end": 1, "type": "PER"},
        "tail": {"start": 3, "end": 5, "type": "ORG"},
    }
    example = parse_token_spans(record, WHERE)
    assert example == {
        "text": "Alice works for Acme Corp .",
        "head": [0, 5],
        "head_type": "PER",
        "tail": [16, 25],
        "tail_type": "ORG",
    }
    assert spans_of(example) == ("Alice", "Acme Corp")
    untyped = parse_token_spans({**record, "tail": {"start": 5, "end": 6}}, WHERE)
    assert untyped["tail"] == [26, 27] and untyped["tail_type"] == ""


@pytest.mark.parametrize(
    "head, tail, phrase",
    [
        ({"start": 0, "end": 1}, {"start": 2, "end": 4}, "has a tail span out of range"),
        ({"start": 2, "end": 2}, {"start": 0, "end": 1}, "has a head span out of range"),
        ({"start": 2, "end": 1}, {"start": 0, "end": 1}, "got start 2, end 1 for 3 tokens"),
        ({"start": -1, "end": 1}, {"start": 2, "end": 3}, "has a head span out of range"),
        (None, {"start": 0, "end": 1}, 'lacks head {"start": i, "end": j}: got None'),
        ({"start": 0}, {"start": 1, "end": 2}, "lacks head"),
        ({"start": 0, "end": 2}, {"start": 1, "end": 3}, "has overlapping head and tail"),
    ],
)
def test_bad_token_spans_are_reported(head, tail, phrase):
    record = {"tokens": ["Alice", "visited", "Oslo"], "head": head, "tail": tail}
    with pytest.raises(DataError) as error:
        parse_token_spans(record, WHERE)
    assert str(error.value).startswith(WHERE)
    assert phrase in str(error.value)


# ReTask.read


def test_read_jsonl_with_marked_text(tmp_path):
    path = tmp_path / "marked.jsonl"
    path.write_text(
        '{"text": "<e1>Alice</e1> works for <e2>Acme</e2> .", "label": "works_for"}\n'
        "\n"
        '{"text": "<e2>Oslo</e2> is home to <e1>Bob</e1>", "label": "lives_in"}\n'
    )
    data = ReTask().read(str(path), "--train_file", "auto")
    assert data["text"] == ["Alice works for Acme .", "Oslo is home to Bob"]
    assert data["head"] == [[0, 5], [16, 19]]
    assert data["tail"] == [[16, 20], [0, 4]]
    assert data["label"] == ["works_for", "lives_in"]
    assert data["line"] == [1, 3]
    assert data["head_type"] == ["", ""] and data["tail_type"] == ["", ""]


def test_read_jsonl_with_tokens_and_spans(tmp_path):
    path = write_jsonl(
        tmp_path / "tokens.jsonl",
        [
            {
                "tokens": ["Alice", "works", "for", "Acme", "."],
                "head": {"start": 0, "end": 1, "type": "PER"},
                "tail": {"start": 3, "end": 4, "type": "ORG"},
                "label": "works_for",
            }
        ],
    )
    data = ReTask().read(path, "--train_file", "auto")
    assert data.to_list() == [
        {
            "text": "Alice works for Acme .",
            "head": [0, 5],
            "head_type": "PER",
            "tail": [16, 20],
            "tail_type": "ORG",
            "label": "works_for",
            "line": 1,
        }
    ]


def test_read_semeval_file_with_crlf_record(tmp_path):
    path = tmp_path / "TRAIN_FILE.TXT"
    path.write_bytes(SEMEVAL_RECORDS)
    assert sniff_format(str(path), "auto") == "semeval2010"
    for data_format in ("auto", "semeval2010"):
        data = ReTask().read(str(path), "--train_file", data_format)
        assert data["text"] == [
            "The child was wrapped into the cradle.",
            "The author of a keygen uses a disassembler.",
        ]
        assert data["label"] == ["Entity-Destination(e1,e2)", "Instrument-Agency(e2,e1)"]
        assert data["line"] == [1, 5]
        assert [spans_of(e) for e in data] == [("child", "cradle"), ("disassembler", "author")]
        assert data["head_type"] == ["", ""] and data["tail_type"] == ["", ""]


def test_jsonl_is_not_sniffed_as_semeval(tmp_path):
    path = write_jsonl(tmp_path / "d.jsonl", [{"text": "<e1>a</e1> <e2>b</e2>", "label": "r"}])
    assert sniff_format(path, "auto") == "jsonl"
    assert sniff_format(path, "semeval2010") == "semeval2010"


def test_semeval_record_without_label_line_names_the_line(tmp_path):
    path = tmp_path / "bad.txt"
    path.write_bytes(SEMEVAL_RECORDS + b'3\t"A <e1>b</e1> c <e2>d</e2>."\n\nComment:\n')
    with pytest.raises(DataError) as error:
        ReTask().read(str(path), "--train_file", "auto")
    assert str(error.value).startswith(f"--train_file {path} line 10 should be the relation line")
    assert "of record 3: got ''" in str(error.value)


def test_semeval_record_followed_by_the_next_record_lacks_its_label(tmp_path):
    path = tmp_path / "TEST_FILE.txt"
    path.write_text('8001\t"The <e1>a</e1> met <e2>b</e2>."\n8002\t"A <e1>c</e1> in <e2>d</e2>."\n')
    with pytest.raises(DataError, match="line 2 should be the relation line of record 8001"):
        ReTask().read(str(path), "--train_file", "auto")


def test_unlabelled_jsonl_is_accepted_only_when_asked(tmp_path):
    path = write_jsonl(tmp_path / "in.jsonl", [{"text": "<e1>Alice</e1> met <e2>Bob</e2>"}])
    data = ReTask().read(path, "--input_file", "auto", labelled=False)
    assert data["label"] == [None]
    assert data["text"] == ["Alice met Bob"]
    with pytest.raises(DataError, match=r"in.jsonl line 1 lacks a string 'label': got None"):
        ReTask().read(path, "--train_file", "auto")


@pytest.mark.parametrize("content", ["", "\n\n  \n"])
def test_empty_file_is_reported(tmp_path, content):
    path = tmp_path / "empty.jsonl"
    path.write_text(content)
    with pytest.raises(DataError, match=f"--train_file {path} is empty: got 0 examples"):
        ReTask().read(str(path), "--train_file", "auto")


def test_typed_markers_need_entity_types(tmp_path):
    path = write_jsonl(
        tmp_path / "d.jsonl",
        [
            {
                "tokens": ["Alice", "met", "Bob"],
                "head": {"start": 0, "end": 1, "type": "PER"},
                "tail": {"start": 2, "end": 3, "type": "PER"},
                "label": "met",
            },
            {"text": "<e1>Alice</e1> met <e2>Bob</e2>", "label": "met"},
        ],
    )
    with pytest.raises(DataError) as error:
        ReTask(typed_markers=True).read(path, "--train_file", "auto")
    assert str(error.value).startswith(f"--train_file {path} line 2 has no entity types")
    assert "drop --typed_markers" in str(error.value)
    assert len(ReTask().read(path, "--train_file", "auto")) == 2


# Markers as the model reads them


def test_marked_text_with_typed_markers():
    task = ReTask(typed_markers=True, entity_types=["PER", "ORG"])
    example = {
        "text": "Alice works for Acme .",
        "head": [0, 5],
        "tail": [16, 20],
        "head_type": "PER",
        "tail_type": "ORG",
    }
    assert (
        task.marked_text(example) == "<e1:PER> Alice </e1:PER> works for <e2:ORG> Acme </e2:ORG> ."
    )
    # A type unseen in training falls back to the plain markers.
    assert (
        task.marked_text({**example, "tail_type": "LOC"})
        == "<e1:PER> Alice </e1:PER> works for <e2> Acme </e2> ."
    )
    assert ReTask().marked_text(example) == "<e1> Alice </e1> works for <e2> Acme </e2> ."
    assert task.marker_tokens() == [
        *SEMEVAL_MARKERS,
        *["<e1:PER>", "</e1:PER>", "<e2:PER>", "</e2:PER>"],
        *["<e1:ORG>", "</e1:ORG>", "<e2:ORG>", "</e2:ORG>"],
    ]
    assert ReTask(entity_types=["PER"]).marker_tokens() == SEMEVAL_MARKERS


def test_typed_inserts_the_type_before_a_closing_bracket_else_appends_it():
    assert typed("<e1>", "PER") == "<e1:PER>"
    assert typed("</e2>", "ORG") == "</e2:ORG>"
    assert typed("<<", "X") == "<<:X"
    assert typed(">>", "X") == ">:X>"
    assert typed("[[", "X") == "[[:X"
    assert typed("]]", "X") == "]:X]"
    assert ReTask(markers=CHEMPROT_MARKERS, typed_markers=True, entity_types=["X"]).marker_tokens()[
        4:
    ] == ["<<:X", ">:X>", "[[:X", "]:X]"]


def test_marked_text_of_adjacent_entities_keeps_markers_in_order():
    example = parse_marked_text("<e1>Ca</e1><e2>2+</e2> ions", SEMEVAL_MARKERS, WHERE)
    assert example == {"text": "Ca2+ ions", "head": [0, 2], "tail": [2, 4]}
    example.update(head_type="", tail_type="")
    assert ReTask().marked_text(example) == "<e1> Ca </e1><e2> 2+ </e2> ions"


def test_adjacent_entities_tail_first_keep_markers_in_order():
    example = parse_marked_text("<e2>Ca</e2><e1>2+</e1> ions", SEMEVAL_MARKERS, WHERE)
    example.update(head_type="", tail_type="")
    assert ReTask().marked_text(example) == "<e2> Ca </e2><e1> 2+ </e1> ions"


def test_find_entity_types_ignores_untyped_entities():
    task = ReTask(typed_markers=True)
    data = Dataset.from_list(
        [
            {"head_type": "PER", "tail_type": "ORG"},
            {"head_type": "", "tail_type": "LOC"},
            {"head_type": "ORG", "tail_type": ""},
        ]
    )
    task.find_entity_types(data)
    assert task.entity_types == ["LOC", "ORG", "PER"]


# Windowing through ReTask.tokenize

FILLER = ["filler"] * 200
PAIR = "<e1>Alice</e1> works for <e2>Acme</e2> ."
PAIR_TOKENS = ["<e1>", "alice", "</e1>", "works", "for", "<e2>", "acme", "</e2>", "."]
LABEL2ID = {"lives_in": 0, "works_for": 1}


def tokenizer_for(task: ReTask):
    tokenizer = build_wordpiece_tokenizer([FILLER, ["Alice", "works", "for", "Acme", "."]])
    tokenizer.add_tokens(task.marker_tokens(), special_tokens=True)
    return tokenizer


def re_dataset(texts_and_labels: list[tuple[str, str]]) -> Dataset:
    examples = []
    for line, (text, label) in enumerate(texts_and_labels, start=1):
        example = parse_marked_text(text, SEMEVAL_MARKERS, f"line {line}")
        examples.append({**example, "label": label, "line": line, "head_type": "", "tail_type": ""})
    return Dataset.from_list(examples)


def tokens_of(tokenizer, row: dict) -> list[str]:
    return tokenizer.convert_ids_to_tokens(row["input_ids"])


@pytest.mark.parametrize(
    "text, expected",
    [
        (  # 209 tokens, markers at 200 and 207: the window is the last 30.
            " ".join(FILLER) + " " + PAIR,
            ["[CLS]"] + ["filler"] * 21 + PAIR_TOKENS + ["[SEP]"],
        ),
        (PAIR + " " + " ".join(FILLER), ["[CLS]"] + PAIR_TOKENS + ["filler"] * 21 + ["[SEP]"]),
        (  # span of 8 in a window of 30: 22 positions of slack, 11 before it.
            " ".join(FILLER[:100]) + " " + PAIR + " " + " ".join(FILLER[:100]),
            ["[CLS]"] + ["filler"] * 11 + PAIR_TOKENS + ["filler"] * 10 + ["[SEP]"],
        ),
    ],
)
def test_long_text_is_cut_to_a_window_around_both_entities(text, expected):
    task = ReTask()
    tokenizer = tokenizer_for(task)
    encoded = task.tokenize(re_dataset([(text, "works_for")]), tokenizer, LABEL2ID, 32, True)
    assert len(encoded) == 1
    row = encoded[0]
    assert len(row["input_ids"]) == 32
    assert row["input_ids"][0] == tokenizer.cls_token_id
    assert row["input_ids"][-1] == tokenizer.sep_token_id
    marker_ids = tokenizer.convert_tokens_to_ids(SEMEVAL_MARKERS)
    assert [i for i in row["input_ids"] if i in marker_ids] == marker_ids
    assert tokens_of(tokenizer, row) == expected
    assert row["attention_mask"] == [1] * 32
    assert row["label"] == 1 and row["example_id"] == 0
    assert task.dropped == {"train": 0}


def test_entities_farther_apart_than_the_window_are_dropped_and_counted():
    task = ReTask()
    tokenizer = tokenizer_for(task)
    far = "<e1>Alice</e1> " + " ".join(FILLER[:40]) + " <e2>Acme</e2>"
    data = re_dataset(
        [(PAIR, "works_for"), (far, "works_for"), ("<e2>Acme</e2> <e1>Alice</e1>", "lives_in")]
    )
    encoded = task.tokenize(data, tokenizer, LABEL2ID, 32, True)
    assert task.dropped["train"] == 1
    assert encoded["example_id"] == [0, 2]
    assert encoded["label"] == [1, 0]
    assert [tokens_of(tokenizer, row) for row in encoded] == [
        ["[CLS]", *PAIR_TOKENS, "[SEP]"],
        ["[CLS]", "<e2>", "acme", "</e2>", "<e1>", "alice", "</e1>", "[SEP]"],
    ]

    unlabelled = task.tokenize(data, tokenizer, None, 32, False)
    assert unlabelled.column_names == ["input_ids", "attention_mask", "example_id"]
    assert unlabelled["example_id"] == [0, 2]
    assert task.dropped == {"train": 1, "eval": 1}
    # The same pair fits once the window holds all 46 positions between and including markers.
    task.tokenize(data, tokenizer, LABEL2ID, 48, True)
    assert task.dropped["train"] == 0


def test_typed_markers_are_kept_whole_in_the_window():
    task = ReTask(typed_markers=True, entity_types=["ORG", "PER"])
    tokenizer = tokenizer_for(task)
    data = Dataset.from_list(
        [
            {
                "text": "Alice works for Acme .",
                "head": [0, 5],
                "tail": [16, 20],
                "head_type": "PER",
                "tail_type": "ORG",
                "label": "works_for",
                "line": 1,
            }
        ]
    )
    encoded = task.tokenize(data, tokenizer, LABEL2ID, 32, False)
    assert tokens_of(tokenizer, encoded[0]) == [
        *["[CLS]", "<e1:PER>", "alice", "</e1:PER>", "works", "for"],
        *["<e2:ORG>", "acme", "</e2:ORG>", ".", "[SEP]"],
    ]
    assert task.dropped == {"eval": 0}


# compute_metrics


def test_micro_and_macro_scores_leave_out_the_negative_label():
    id2label = {0: "A", 1: "B", 2: "Other"}
    gold = np.array([0, 0, 1, 2, 2, 1])  # A A B Other Other B
    predicted = np.array([0, 0, 1, 0, 2, 2])  # A A B A Other Other
    metrics = ReTask(negative_label="Other").compute_metrics(predicted, gold, id2label)
    # Positive predictions 4 (rows 0-3), positive gold 4 (rows 0, 1, 2, 5), both right: 3.
    # A: P 2/3, R 1, F1 0.8. B: P 1, R 1/2, F1 2/3.
    assert metrics == pytest.approx(
        {
            "precision": 0.75,
            "recall": 0.75,
            "f1": 0.75,
            "macro_f1": (0.8 + 2 / 3) / 2,
            "accuracy": 4 / 6,
        }
    )


def test_without_a_negative_label_micro_f1_is_accuracy():
    id2label = {0: "A", 1: "B", 2: "Other"}
    gold = [np.int64(i) for i in (0, 0, 1, 2, 2, 1)]
    predicted = [np.int64(i) for i in (0, 0, 1, 0, 2, 2)]
    metrics = ReTask().compute_metrics(predicted, gold, id2label)
    assert metrics["f1"] == pytest.approx(4 / 6)
    assert metrics["precision"] == pytest.approx(4 / 6)
    assert metrics["accuracy"] == pytest.approx(4 / 6)
    # Other: P 1/2, R 1/2, F1 1/2, beside A (0.8) and B (2/3).
    assert metrics["macro_f1"] == pytest.approx((0.8 + 2 / 3 + 0.5) / 3)


# windows.py


@pytest.mark.parametrize(
    "length, size, expected",
    [
        (3, 4, [(0, 3)]),
        (4, 4, [(0, 4)]),
        (10, 4, [(0, 4), (2, 6), (4, 8), (6, 10)]),
        (11, 4, [(0, 4), (2, 6), (4, 8), (6, 10), (7, 11)]),
        (6, 5, [(0, 5), (1, 6)]),
    ],
)
def test_sliding_windows(length, size, expected):
    assert sliding_windows(length, size) == expected


@pytest.mark.parametrize("size", [1, 2, 3, 4, 7])
def test_sliding_windows_cover_every_position_with_half_overlap(size):
    for length in range(size + 1, 40):
        windows = sliding_windows(length, size)
        assert all(end - start == size for start, end in windows)
        assert windows[0][0] == 0 and windows[-1][1] == length
        covered = {p for start, end in windows for p in range(start, end)}
        assert covered == set(range(length))
        step = max(1, size // 2)
        assert all(b[0] - a[0] == step for a, b in zip(windows[:-2], windows[1:-1], strict=True))
        assert 0 < windows[-1][0] - windows[-2][0] <= step


def test_window_owners_are_the_most_central():
    windows = [(0, 4), (2, 6), (4, 8), (6, 10)]
    assert window_owners(windows) == [0, 0, 0, 1, 1, 2, 2, 3, 3, 3]
    # Equal margins: the first window wins.
    assert window_owners([(0, 5), (2, 7), (4, 9)])[3:5] == [0, 1]
    assert window_owners([(0, 3)]) == [0, 0, 0]


def test_window_owners_of_a_long_document_cost_one_pass():
    windows = sliding_windows(1_000_000, 126)
    owners = window_owners(windows)  # the per-position search took minutes here
    assert len(owners) == 1_000_000 and owners[0] == 0 and owners[-1] == len(windows) - 1
    assert all(windows[owners[p]][0] <= p < windows[owners[p]][1] for p in range(0, 10**6, 997))


@pytest.mark.parametrize(
    "span, length, size, expected",
    [
        ((3, 10), 20, 6, None),
        ((5, 13), 30, 8, (5, 13)),
        ((10, 14), 30, 8, (8, 16)),
        ((1, 3), 30, 8, (0, 8)),
        ((27, 30), 30, 8, (22, 30)),
        ((2, 5), 6, 8, (0, 6)),
    ],
)
def test_window_around(span, length, size, expected):
    window = window_around(*span, length, size)
    assert window == expected
    if window is not None:
        assert window[0] <= span[0] and span[1] <= window[1] <= length


def test_special_affixes_of_the_wordpiece_tokenizer():
    tokenizer = build_wordpiece_tokenizer([["Alice", "works"]])
    assert special_affixes(tokenizer) == ([2], [3])
    assert tokenizer.convert_ids_to_tokens([2, 3]) == ["[CLS]", "[SEP]"]


def test_chemprot_marker_strings_inside_chemical_names():
    """Real ChemProt lines: `[[` also occurs in chemical names; the marker is the spaced one."""
    text = "<< A1 >> blocked by ([[ WB-4101 ]]; 1 mg) and [[(1,1-dimethyl)amino]carbonyl] now"
    example = parse_marked_text(text, CHEMPROT_MARKERS, WHERE)
    assert spans_of(example) == ("A1", "WB-4101")
    text = "<< CB1 >> agonist WIN 55,212 [[[ R-(1)-[2,3-x]-y ]] mesylate"
    assert spans_of(parse_marked_text(text, CHEMPROT_MARKERS, WHERE)) == ("CB1", "R-(1)-[2,3-x]-y")
    with pytest.raises(DataError, match="has the tail marker '\\[\\[' twice"):
        parse_marked_text("<< A >> [[ B ]] and [[ C ]]", CHEMPROT_MARKERS, WHERE)


def test_an_evaluation_that_predicts_one_label_for_everything_is_said(caplog):
    import logging

    import numpy as np
    from accelerate import PartialState

    from accel_trainer.train.inference import warn_if_collapsed

    PartialState(cpu=True)
    id2label = {0: "no_relation", 1: "works_for", 2: "born_in"}
    with caplog.at_level(logging.WARNING, logger="accel_trainer.train.inference"):
        warn_if_collapsed([np.array(0)] * 3, [np.array(0), np.array(1), np.array(2)], id2label)
    assert "the model predicts 'no_relation' for everything, while the data has 3 labels" in (
        caplog.text
    )
    caplog.clear()
    with caplog.at_level(logging.WARNING, logger="accel_trainer.train.inference"):
        # token labels: positions marked -100 are not scored
        warn_if_collapsed([np.array([0, 1, 2])], [np.array([0, 1, -100])], id2label)
    assert caplog.text == ""


def test_an_unseen_semeval_label_is_named_at_its_own_line(tmp_path):
    from accel_trainer.errors import DataError
    from accel_trainer.tasks.re import ReTask

    path = tmp_path / "dev.txt"
    path.write_text(
        '1\t"The <e1>child</e1> was wrapped into the <e2>cradle</e2>."\nOther\nComment:\n\n'
        '2\t"A <e1>wind</e1> caused the <e2>damage</e2>."\nCause-Effect(e1,e2)\nComment:\n'
    )
    task = ReTask()
    dev = task.read(str(path), "--validation_file", "auto")
    with pytest.raises(DataError, match=r"--validation_file line 6 has a label unseen in training"):
        task.check_labels(dev, ["Other", "Entity-Origin(e1,e2)"], "--validation_file")
