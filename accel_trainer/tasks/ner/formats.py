"""NER files: CoNLL and JSON lines readers, the format a file is read in, and the sniff that
tells what `predict`'s --input_file holds (CoNLL, tokens, or raw text)."""

from __future__ import annotations

import json
import logging
from itertools import islice

from accel_trainer.errors import DataError, OtherTaskData
from accel_trainer.tasks.base import PredictionInput
from accel_trainer.tasks.files import (
    LINE_KINDS,
    entity_markers_in,
    json_line,
    json_lines,
    json_object,
    line_kind,
)
from accel_trainer.tasks.ner.tags import check_tag, sentence_problem
from accel_trainer.tasks.text import (
    CONLL_SNIFF_LINES,
    TAG_SHAPE,
    conll_evidence,
    one_word_per_line,
)

JSON_SUFFIXES = (".json", ".jsonl")
logger = logging.getLogger("accel_trainer")


def resolve_format(path: str, data_format: str) -> str:
    """'conll' or 'jsonl' for a file, from --data_format or the file's suffix."""
    if data_format != "auto":
        return data_format
    return "jsonl" if path.lower().endswith(JSON_SUFFIXES) else "conll"


RELATION_ADVICE = "Use --task re for relation files."
# What a JSON lines file that is plainly in another format is, and the flag that fixes it.
OTHER_FORMATS = {
    "conll": lambda where, got: DataError(
        f"{where} is {LINE_KINDS['conll']}, not a JSON object: got {got}. Pass --data_format "
        "conll to read it as CoNLL."
    ),
    "semeval2010": lambda where, got: OtherTaskData(
        f"{where} is {LINE_KINDS['semeval2010']}, not a JSON object: got {got}.",
        "re",
        RELATION_ADVICE,
    ),
}


def not_conll(line: str, where: str) -> DataError | None:
    """The error for a line that is plainly not CoNLL under any tag scheme (a JSON object, the
    first line of a SemEval-2010 record), saying what it looks like; None if it could be CoNLL."""
    got = repr(line.strip()[:80])
    record = json_object(line)
    if record is not None:
        if "ner_tags" not in record and relation_like(record):
            return OtherTaskData(
                f"{where} is a JSON object with keys {sorted(record)}, like a relation extraction "
                f"example, not a CoNLL token line: got {got}.",
                "re",
                RELATION_ADVICE,
            )
        return DataError(
            f"{where} is a JSON object, not a CoNLL token line: got {got}. Pass --data_format "
            "jsonl to read JSON lines (or name the file .jsonl)."
        )
    if line_kind(line) == "semeval2010":  # a marked sentence, not quoted tokens
        return OtherTaskData(
            f"{where} is {LINE_KINDS['semeval2010']}, not a CoNLL token line: got {got}.",
            "re",
            RELATION_ADVICE,
        )
    return None


def read_conll(path: str, what: str, tag_scheme: str, labelled: bool = True) -> list[dict]:
    """Sentences of a CoNLL file: token in the first column, tag in the last. Unlabelled input
    (for predict) may have the token column only. `document_id`: how many -DOCSTART- lines
    come before the sentence; None in a file without any."""
    sentences: list[dict] = []
    documents = 0
    tokens: list[str] = []
    tags: list[str] = []
    start_line = 0
    width = None  # (columns, line number) of the sentence's first line with a tag

    def flush() -> None:
        nonlocal width
        if tokens:
            sentences.append({"tokens": list(tokens), "ner_tags": list(tags), "line": start_line,
                              "document_id": documents})  # fmt: skip
            if not labelled:  # predict writes the -DOCSTART- line back before it
                first = len(sentences) == 1 or sentences[-2]["document_id"] != documents
                sentences[-1]["document_start"] = documents > 0 and first
        tokens.clear()
        tags.clear()
        width = None

    with open(path, encoding="utf-8-sig") as handle:
        for line_number, line in enumerate(handle, start=1):
            columns = line.split()
            if not columns:
                flush()
                continue
            where = f"{what} line {line_number}"
            problem = not_conll(line, where)
            if problem is not None:
                raise problem
            if columns[0] == "-DOCSTART-":
                flush()
                documents += 1
                continue
            if len(columns) < 2 and not labelled:
                columns.append("O")
            elif not labelled and not TAG_SHAPE.match(columns[-1]) and columns[-1] != "O":
                # Plain text past the lines that were sniffed, or columns without a tag.
                raise sentence_problem(line, where) or DataError(
                    f"{where} has {len(columns)} columns and the last is no tag: got "
                    f"{line.strip()[:80]!r}. A CoNLL line is a token and its tag, or the token "
                    "alone; if the file is plain text, pass --data_format text."
                )
            if len(columns) < 2:
                raise DataError(
                    f"{where} has 1 column, expected token and tag: got "
                    f"{line.strip()!r}. Separate them with a tab or space."
                )
            if not tokens:
                start_line = line_number
            tokens.append(columns[0])
            tags.append(columns[-1])
            if labelled:
                check_tag(columns[-1], tag_scheme, where, line)
            if len(line.split()) > 1:
                width = width or (len(columns), line_number)
                if len(columns) != width[0]:
                    raise DataError(
                        f"{where} has {len(columns)} columns where line {width[1]} has "
                        f"{width[0]}: got {line.strip()[:80]!r}. Every line of a CoNLL sentence "
                        "has the same columns, the token first and its tag last; "
                        + ("fix that line." if labelled else "if the file is sentences of "
                           "text, pass --data_format text.")
                    )  # fmt: skip
    flush()
    if not documents:
        for sentence in sentences:
            sentence["document_id"] = None
    return sentences


def relation_like(record: dict) -> bool:
    """Whether a JSON record is a relation extraction example: head and tail fields, or a text
    with two marked entities (<e1>..</e1> and <e2>..</e2>, or << >> and [[ ]]); one pair of
    brackets, as in wiki markup, is ordinary text."""
    marked = entity_markers_in(str(record.get("text")))
    return {"head", "tail"} <= set(record) or len(marked) >= 4


def read_jsonl(path: str, what: str, tag_scheme: str, labelled: bool = True) -> list[dict]:
    """Sentences of a JSON lines file: {"tokens": [...], "ner_tags": [...]} per line
    (`ner_tags` optional in unlabelled input)."""
    sentences = []
    starts = 0  # -DOCSTART- records so far, which delimit documents as in CoNLL
    for number, where, record in json_lines(path, what, OTHER_FORMATS):
        original = json_line(record)  # predict writes each record back as it was read
        if record.get("tokens") == ["-DOCSTART-"]:
            starts += 1
            if not labelled:  # its output line, without words
                sentences.append({"tokens": [], "ner_tags": [], "line": number,
                                  "document_id": None, "record": original})  # fmt: skip
            continue
        if not labelled and isinstance(record.get("tokens"), list):
            record.setdefault("ner_tags", ["O"] * len(record["tokens"]))
        if "tokens" not in record and relation_like(record):
            raise OtherTaskData(
                f"{where} lacks 'tokens' or 'ner_tags': got keys {sorted(record)}, like a relation "
                "extraction example.",
                "re",
                'Use --task re for relation files; NER needs {"tokens": [...], "ner_tags": [...]} '
                "per line.",
            )
        if not labelled and "tokens" not in record and "text" in record:
            raise DataError(
                f"{where} has a 'text' but no 'tokens': got keys {sorted(record)}. The first "
                "record has tokens, so the file is read as tokenised sentences; give every "
                "record 'tokens', or every record a 'text' (one document each)."
            )
        if "tokens" in record and not isinstance(record["tokens"], list):
            raise DataError(
                f"{where} has 'tokens' that are no list: got {json.dumps(record['tokens'])[:60]}. "
                'Give the words as a list of strings, e.g. "tokens": ["John", "lives"].'
            )
        if "tokens" not in record or "ner_tags" not in record:
            raise DataError(
                f"{where} lacks 'tokens' or 'ner_tags': got keys {sorted(record)}. "
                'Write {"tokens": [...], "ner_tags": [...]} per line.'
            )
        tokens, tags = record["tokens"], record["ner_tags"]
        if not isinstance(tokens, list) or not isinstance(tags, list):
            raise DataError(f"{where}: 'tokens' and 'ner_tags' must be lists.")
        if not all(isinstance(token, str) for token in tokens):
            raise DataError(
                f"{where} has tokens that are not strings: got {tokens[:5]!r}. Write each "
                "token as a string."
            )
        if len(tokens) != len(tags):
            raise DataError(
                f"{where} has {len(tokens)} tokens but {len(tags)} ner_tags: got "
                f"{tokens[:5]!r}... Give one tag per token."
            )
        if not all(isinstance(tag, str) for tag in tags):
            raise DataError(
                f"{where} has ner_tags that are not strings: got {tags[:5]!r}. Write tags "
                'as strings, e.g. "B-PER".'
            )
        for tag in tags if labelled else []:
            check_tag(tag, tag_scheme, where)
        sentence = {"tokens": tokens, "ner_tags": tags, "line": number,
                    "document_id": document_id(record, where), "starts": starts}  # fmt: skip
        if not labelled:  # every record gets its output line, an empty one too
            sentences.append({**sentence, "record": original})
        elif tokens:
            sentences.append(sentence)
    by_starts = starts and all(sentence["document_id"] is None for sentence in sentences)
    for sentence in sentences:
        starts = sentence.pop("starts", None)
        if by_starts and starts is not None:
            sentence["document_id"] = starts
    return sentences


def document_id(record: dict, where: str) -> str | int | None:
    """A record's `document_id` (a string or an integer; a whole float as pandas writes an
    integer column with gaps, 7.0, is 7), None where it has none."""
    value = record.get("document_id")
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if value is None or (isinstance(value, str | int) and not isinstance(value, bool)):
        return value
    raise DataError(
        f"{where} has a document_id that is neither a string nor an integer: got "
        f"{json.dumps(value)[:60]}. Give consecutive sentences of one document the same id, "
        'e.g. "document_id": "PMID-1234".'
    )


def warn_of_scattered_document(ids: list, lines: list[int], what: str) -> None:
    """Warn when a document_id comes back after other documents: only consecutive sentences
    are one document, so its parts are read as documents of their own."""
    last_line: dict = {}
    previous = None
    for value, line in zip(ids, lines, strict=True):
        if value is not None and value != previous and value in last_line:
            logger.warning(
                "%s line %d: document_id %r comes back after other documents (it was on line "
                "%d): only consecutive lines form a document, so each part is read with its own "
                "neighbours. Keep each document's sentences together.",
                what, line, value, last_line[value],
            )  # fmt: skip
            return
        if value is not None:
            last_line[value] = line
        previous = value


def number_documents(ids: list, file_order: bool) -> list[int]:
    """Each sentence's document number: consecutive sentences with the same `document_id` share
    a document; one without an id is a document of its own, or with `file_order` belongs to
    its neighbours without one."""
    numbers, number, previous = [], -1, object()
    for value in ids:
        if value != previous or (value is None and not file_order):
            number += 1
        numbers.append(number)
        previous = value
    return numbers


def input_kind(source: PredictionInput) -> str:
    """What --input_file holds: "conll", "jsonl" (tokens), "text" (plain text) or
    "jsonl-text" (JSON lines with a `text` document each)."""
    path, data_format = source.input_file, source.data_format
    if data_format == "text" or source.text_format is not None:
        return "text"
    what = f"--input_file {path}"
    if resolve_format(path, data_format) == "jsonl":
        first = next(iter(json_lines(path, what, OTHER_FORMATS)), None)
        if first is None or "tokens" in first[2]:
            return "jsonl"
        number, where, record = first
        if relation_like(record):
            raise OtherTaskData(
                f"{where} is a JSON object with keys {sorted(record)} and marked entities, "
                f"like a relation extraction example, not a document to find entities in: "
                f"got {json.dumps(record, ensure_ascii=False)[:80]!r}.",
                "re",
                RELATION_ADVICE,
            )
        return "jsonl-text"
    if data_format == "conll":
        return "conll"
    with open(path, encoding="utf-8-sig", errors="replace") as handle:
        numbered = ((n, line) for n, line in enumerate(handle, start=1) if line.strip())
        numbered_lines = list(islice(numbered, CONLL_SNIFF_LINES))
    if numbered_lines:  # a JSON lines or SemEval file is no text to find entities in
        number, line = numbered_lines[0]
        problem = not_conll(line, f"{what} line {number}")
        if problem is not None:
            raise problem
    lines = [line for _, line in numbered_lines]
    evidence = conll_evidence(lines, source.labels)
    if isinstance(evidence, str):
        raise DataError(
            f"{what} could be CoNLL or sentences of text: every line has "
            f"{len(evidence.split())} columns and ends in the same tag, e.g. {evidence!r}. "
            "Pass --data_format conll to read a token and its tag per line, or "
            "--data_format text to read each line as a document."
        )
    if not evidence:
        logger.info(
            "predict: %s is read as plain text, one document per line: its lines are not "
            "CoNLL token lines (pass --data_format conll to read it as CoNLL)",
            path,
        )
        return "text"
    if one_word_per_line(lines):
        logger.warning(
            "predict: %s has one word per line and no tags: it is read as CoNLL, each run "
            "of lines up to a blank line one sentence. Pass --data_format text to read "
            "every line as a document of its own.",
            path,
        )
    else:
        logger.info(
            "predict: %s is read as CoNLL token lines (pass --data_format text to read it "
            "as plain text)",
            path,
        )
    return "conll"
