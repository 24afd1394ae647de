"""Reading data files: existence checks, encoding errors, JSON lines with line numbers."""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable, Iterator

from accel_trainer.errors import DataError

# The first line of a SemEval-2010 Task 8 record: id<TAB>"sentence with <e1>..</e1> <e2>..</e2>".
SEMEVAL_ID_LINE = re.compile(r'^(\d+)\t"(.*)"\s*$')
# A CoNLL token line: a token, perhaps other columns, and a tag of a prefixed scheme (or O) last.
CONLL_TOKEN_LINE = re.compile(r"^\S+(\s+\S+){0,8}\s+(O|[BIESLU]-\S+)\s*$")
# What a line that is not JSON plainly is, by the kind line_kind() returns.
LINE_KINDS = {
    "conll": "a CoNLL token line (a token and its tag)",
    "semeval2010": 'the first line of a SemEval-2010 relation record (id<TAB>"sentence")',
}
# Inline entity markers of relation files: SemEval-2010 (<e1> </e1>), ChemProt (<< >>, [[ ]]).
ENTITY_MARKER_PAIRS = (("<e1>", "</e1>"), ("<e2>", "</e2>"), ("<<", ">>"), ("[[", "]]"))


# Line breaks to str.splitlines (and some JSON lines readers) that JSON may hold raw.
LINE_SEPARATORS = {"\u2028": "\\u2028", "\u2029": "\\u2029", "\x85": "\\u0085"}


def json_line(record: dict) -> str:
    """One JSON lines record: readable Unicode, but every character that some reader takes
    for a line break escaped, so that a record is always one line."""
    text = json.dumps(record, ensure_ascii=False)
    for character, escaped in LINE_SEPARATORS.items():
        text = text.replace(character, escaped)
    return text + "\n"


def json_object(line: str) -> dict | None:
    """The JSON object a line holds, or None if it holds none."""
    if not line.lstrip().startswith("{"):
        return None
    try:
        record = json.loads(line)
    except json.JSONDecodeError:
        return None
    return record if isinstance(record, dict) else None


def entity_markers_in(line: str) -> list[str]:
    """The entity markers of each pair whose opening and closing marker occur in the line, in
    that order: e.g. ['<<', '>>']."""
    return [
        marker
        for opening, closing in ENTITY_MARKER_PAIRS
        if opening in line and closing in line[line.index(opening) + len(opening) :]
        for marker in (opening, closing)
    ]


# The error for a line of another format, from its place ("F line 1") and its text as got.
OtherFormat = Callable[[str, str], DataError]


def line_kind(line: str) -> str | None:
    """'semeval2010' or 'conll' for a line that is plainly one of those formats, else None.
    Only asked of a line that its reader has already found invalid, to say what it is."""
    match = SEMEVAL_ID_LINE.match(line.rstrip())
    if match and entity_markers_in(match.group(2)):
        return "semeval2010"
    if json_object(line) is None and CONLL_TOKEN_LINE.match(line.strip()):
        return "conll"
    return None


def json_array_problem(path: str, where: str, line: str) -> DataError | None:
    """The error for a JSON lines file that holds one JSON array instead (a .json export)."""
    if not line.lstrip().startswith("["):
        return None
    lines_file = os.path.splitext(path)[0] + ".lines.jsonl"  # never the input itself
    return DataError(
        f"{where} starts a JSON array, not a JSON object per line: got {line.strip()[:80]!r}. "
        f"Write one object per line, e.g. `jq -c '.[]' {path} > {lines_file}`, and give that."
    )


def utf8_problem(path: str, what: str) -> DataError:
    """A DataError naming the first line of `path` that is not UTF-8."""
    with open(path, "rb") as handle:
        for number, line in enumerate(handle, start=1):
            try:
                line.decode("utf-8")
            except UnicodeDecodeError:
                return DataError(
                    f"{what} line {number} is not UTF-8 text: got {line[:60]!r}. Re-encode the "
                    "file, e.g. `iconv -f latin1 -t utf-8 IN > OUT`."
                )
    return DataError(f"{what} is not UTF-8 text. Re-encode the file as UTF-8.")


def check_readable(path: str, what: str) -> None:
    if not os.path.exists(path):
        raise DataError(f"{what} does not exist: got {path!r}. Check the path.")
    if not os.path.isfile(path):
        raise DataError(
            f"{what} is not a file: got {path!r}. Give a regular file, not a folder, pipe or "
            "device."
        )
    if not os.access(path, os.R_OK):
        raise DataError(f"{what} is not readable: got {path!r}. Check its permissions.")
    problem = utf16_problem(path, what)
    if problem is not None:
        raise problem


def utf16_problem(path: str, what: str) -> DataError | None:
    """The error for a UTF-16 file (a byte-order mark, or ASCII text saved as UTF-16), which
    would otherwise read as UTF-8 garbage or fail with advice for Latin-1."""
    with open(path, "rb") as handle:
        start = handle.read(4096)
    has_mark = start.startswith((b"\xff\xfe", b"\xfe\xff"))
    # ASCII as UTF-16: every other byte zero (little- or big-endian), unlike other binary data
    halves = (start[1::2], start[0::2])
    if not has_mark and not any(len(h) >= 2 and h.count(0) * 10 >= len(h) * 9 for h in halves):
        return None
    return DataError(
        f"{what} looks like UTF-16 text, not UTF-8: got {path!r}, which starts {start[:12]!r}. "
        "Re-encode the file, e.g. `iconv -f utf-16 -t utf-8 IN > OUT`."
    )


def json_lines(
    path: str, what: str, other_formats: dict[str, OtherFormat] | None = None
) -> Iterator[tuple[int, str, dict]]:
    """(line number, "WHAT line N", object) for each non-blank line; DataError on bad JSON.
    `other_formats(where, got)`: for a first line that is plainly of another format (a kind
    of LINE_KINDS), the error that names it and the flag that fixes it."""
    with open(path, encoding="utf-8-sig") as handle:
        first = True
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            where = f"{what} line {number}"
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                kind = line_kind(line) if first and other_formats else None
                if kind is not None and kind in other_formats:
                    raise other_formats[kind](where, repr(line.strip()[:80])) from None
                raise json_array_problem(path, where, line) or DataError(
                    f"{where} is not valid JSON: got {line.strip()[:80]!r} ({error.msg}). "
                    "Write one JSON object per line."
                ) from None
            if not isinstance(record, dict):
                raise json_array_problem(path, where, line) or DataError(
                    f"{where} is not a JSON object: got {line.strip()[:80]!r}."
                )
            first = False
            yield number, where, record
