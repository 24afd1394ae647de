"""Relation files: SemEval-2010 Task 8 release files and JSON lines readers, the sniff between
them, and the errors for files that are plainly another format."""

from __future__ import annotations

import re

from accel_trainer.errors import DataError, OtherTaskData
from accel_trainer.tasks.files import (
    LINE_KINDS,
    SEMEVAL_ID_LINE,
    json_line,
    json_lines,
    json_object,
    line_kind,
)
from accel_trainer.tasks.re.spans import SEMEVAL_MARKERS, parse_marked_text, parse_token_spans

SEMEVAL_COMMENT_LINE = re.compile(r"^comment(:|$)", re.IGNORECASE)
SEMEVAL_RELATION = re.compile(r"^[A-Za-z][\w-]*(\((e1,e2|e2,e1)\))?$")


def is_relation_line(line: str | None) -> bool:
    """Whether a line can be a record's relation: one token, e.g. Cause-Effect(e1,e2) or Other
    (an id line has a tab and a sentence, so it is never one token)."""
    return (
        line is not None and len(line.split()) == 1 and not SEMEVAL_COMMENT_LINE.match(line.strip())
    )


def read_semeval(path: str, what: str, labelled: bool = True) -> list[dict]:
    """SemEval-2010 Task 8 release files: records of an id<TAB>"sentence" line, a relation line,
    a Comment: line and a blank line (or the end of the file). Unlabelled input (the official
    TEST_FILE.txt) may have records of the id line only."""
    with open(path, encoding="utf-8-sig") as handle:
        lines = [line.rstrip() for line in handle]  # also drops the CR of CRLF line endings

    def at(index: int) -> str | None:
        return lines[index] if index < len(lines) else None

    def expected(index: int, part: str, record: str, advice: str) -> DataError:
        line = at(index)
        got = "the end of the file" if line is None else repr(line[:80])
        return DataError(
            f"{what} line {index + 1} should be the {part} of record {record}: got {got}. {advice}"
        )

    intact = "Keep the 4-line records intact."
    examples = []
    first_seen: dict[str, int] = {}  # record id -> its line
    number = 0  # index into lines; the line number is number + 1
    while number < len(lines):
        if not lines[number]:
            number += 1
            continue
        match = SEMEVAL_ID_LINE.match(lines[number])
        if not match and not examples:
            problem = other_format_problem(lines[number], f"{what} line {number + 1}")
            if problem is not None:
                raise problem
        if not match:
            raise DataError(
                f'{what} line {number + 1} is not a SemEval-2010 record start (id<TAB>"sentence"): '
                f"got {lines[number][:80]!r}. Check --data_format, and that each record is an id "
                "line, a relation line, a Comment: line and a blank line."
            )
        record = match.group(1)
        if record in first_seen:
            raise DataError(
                f"{what} line {number + 1} repeats record id {record} of line "
                f"{first_seen[record]}: got {lines[number][:80]!r}. Give each record its own id."
            )
        first_seen[record] = number + 1
        example = parse_marked_text(match.group(2), SEMEVAL_MARKERS, f"{what} line {number + 1}")
        example.update(label=None, line=number + 1, head_type="", tail_type="", id=record)
        example["label_line"] = number + 2  # where check_labels points: the relation line
        examples.append(example)
        following = at(number + 1)
        # Unlabelled records may stop after the id line; a Comment: or other text there is
        # still a broken record, not an unlabelled one.
        id_only = following is None or not following or SEMEVAL_ID_LINE.match(following)
        if not labelled and id_only:
            number += 1
            continue
        if not is_relation_line(following):
            if following is not None and SEMEVAL_COMMENT_LINE.match(following.strip()):
                advice = "Give each record its relation, e.g. Cause-Effect(e1,e2) or Other."
                if not labelled:
                    advice += " For predict, the id lines alone will do."
            elif labelled and id_only:
                advice = (
                    f"{intact} Sentences without a relation (as in TEST_FILE.txt) are for predict."
                )
            else:
                advice = f"{intact} The relation is one label, e.g. Cause-Effect(e1,e2) or Other."
            raise expected(number + 1, "relation line", record, advice)
        if not SEMEVAL_COMMENT_LINE.match((at(number + 2) or "").strip()):
            raise expected(number + 2, "Comment: line", record, intact)
        if at(number + 3):
            raise expected(number + 3, "closing blank line", record, intact)
        if not SEMEVAL_RELATION.match(following.strip()):
            raise DataError(
                f"{what} line {number + 2} is not a SemEval-2010 relation: got "
                f"{following.strip()[:80]!r}. Write a relation name, directed with (e1,e2) or "
                "(e2,e1), e.g. Cause-Effect(e1,e2), or Other."
            )
        example["label"] = following.strip()
        number += 3
    return examples


NER_ADVICE = "Use --task ner (the default) for NER files."
# What a relation file that is plainly in another format is, and the flag that fixes it.
OTHER_FORMATS = {
    "conll": lambda where, got: OtherTaskData(
        f"{where} is {LINE_KINDS['conll']}, not a relation example: got {got}.",
        "ner",
        NER_ADVICE,
    ),
    "semeval2010": lambda where, got: DataError(
        f"{where} is {LINE_KINDS['semeval2010']}, not a JSON object: got {got}. Pass "
        "--data_format semeval2010, or leave --data_format out: it is detected."
    ),
}


def other_format_problem(line: str, where: str) -> DataError | None:
    """For the first line of a file read as SemEval-2010 that is no record start: the error if
    it is plainly JSON lines or CoNLL."""
    got = repr(line.strip()[:80])
    if json_object(line) is not None:
        return DataError(
            f'{where} is a JSON object, not a SemEval-2010 record start (id<TAB>"sentence"): got '
            f"{got}. Pass --data_format jsonl, or leave --data_format out: it is detected."
        )
    if line_kind(line) == "conll":
        return OtherTaskData(
            f"{where} is {LINE_KINDS['conll']}, not a SemEval-2010 record start: got {got}.",
            "ner",
            NER_ADVICE,
        )
    return None


def read_re_jsonl(path: str, what: str, markers: list[str], need_label: bool) -> list[dict]:
    """JSON lines with inline-marked `text`, or `tokens` with `head`/`tail` spans; unlabelled
    (for predict), each example keeps the JSON line it came from as `record`."""
    examples = []
    for number, where, record in json_lines(path, what, OTHER_FORMATS):
        if "ner_tags" in record and not {"text", "head", "tail"} & set(record):
            raise OtherTaskData(
                f"{where} has 'ner_tags' and no head or tail, like an NER example, not a relation "
                f"example: got keys {sorted(record)}.",
                "ner",
                NER_ADVICE,
            )
        if "text" in record:
            example = parse_marked_text(str(record["text"]), markers, where)
            example.update(head_type="", tail_type="")
        elif "tokens" in record:
            example = parse_token_spans(record, where)
        else:
            raise DataError(
                f"{where} has neither 'text' nor 'tokens': got keys {sorted(record)}. Give "
                'marked text ({"text": "... <e1>A</e1> ... <e2>B</e2> ...", "label": ...}) '
                "or tokens with head and tail spans. An NER file needs --task ner."
            )
        label = record.get("label")
        if need_label and not isinstance(label, str):
            raise DataError(
                f"{where} lacks a string 'label': got {label!r}. Give each example its relation."
            )
        example.update(label=label if isinstance(label, str) else None, line=number)
        if not need_label:
            example["record"] = json_line(record)
        examples.append(example)
    return examples


def sniff_format(path: str, data_format: str) -> str:
    """'jsonl' or 'semeval2010' for an RE file."""
    if data_format != "auto":
        return data_format
    with open(path, encoding="utf-8-sig") as handle:
        first = next((line for line in handle if line.strip()), "")
    return "semeval2010" if SEMEVAL_ID_LINE.match(first.rstrip("\r\n")) else "jsonl"
