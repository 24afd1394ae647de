"""NER tags: the schemes --tag_scheme checks, the error for a line that holds a sentence instead
of a token and its tag, and tags as seqeval reads them."""

from __future__ import annotations

import re

from accel_trainer.errors import DataError, OtherTaskData
from accel_trainer.tasks.files import entity_markers_in

TAG_SCHEMES = ("bio", "iobes", "none")
TAG_PATTERNS = {
    "bio": re.compile(r"^(O|[BI]-.+)$"),
    "iobes": re.compile(r"^(O|[BIES]-.+)$"),
}
PREFIXES = ("B-", "I-", "E-", "S-")
# CoNLL-2003 has 4 columns and some files 5 (with a lemma); a run of 6 words is a sentence.
SENTENCE_WORDS = 6


def sentence_problem(line: str, where: str) -> DataError | None:
    """For a line whose tag is not valid: the error if the line holds a whole sentence (a
    relation example, or text one sentence per line) rather than a token and its tag; None
    if it looks like a CoNLL token line. Only asked once the tag is bad, since a CoNLL file
    may hold many columns or marker-like tokens."""
    got = repr(line.strip()[:80])
    columns = len(line.split())
    markers = entity_markers_in(line)
    if markers:
        return OtherTaskData(
            f"{where} has entity markers {' '.join(markers)} in a line of {columns} columns, "
            f"like a relation extraction example with one sentence per line, not a CoNLL token "
            f"line: got {got}.",
            "re",
            "Use --task re for relation files; NER reads one token and its tag per line.",
        )
    if max(len(field.split()) for field in line.split("\t")) >= SENTENCE_WORDS:
        return DataError(
            f"{where} has {columns} whitespace-separated columns, like a whole sentence on one "
            f"line, not a CoNLL token line: got {got}. NER reads one token and its tag per line, "
            "with a blank line between sentences; use --task re for relation files, "
            "--data_format jsonl for JSON lines, or for predict --data_format text for plain "
            "text."
        )
    return None


def check_tag(tag: str, scheme: str, where: str, line: str | None = None) -> None:
    """DataError unless `tag` is valid in `scheme`; `line`, the CoNLL line it came from, lets
    the error tell a file that is not CoNLL at all from one with a stray tag."""
    pattern = TAG_PATTERNS.get(scheme)
    if pattern is not None and not pattern.match(tag):
        problem = sentence_problem(line, where) if line is not None else None
        if problem is not None:
            raise problem
        allowed = "O, B-TYPE, I-TYPE" if scheme == "bio" else "O, B-, I-, E-, S-TYPE"
        raise DataError(
            f"{where} has a tag that is not valid {scheme.upper()}: got {tag!r}. Use {allowed}, "
            "or pass --tag_scheme none to skip this check."
        )


def seqeval_tag(tag: str) -> str:
    """The tag seqeval reads: an unprefixed tag X (--tag_scheme none, e.g. PER or ATE) becomes
    I-X, so that a run of X is one entity of type X (IO tagging) instead of seqeval cutting X
    into a prefix X[0] and a type X[1:]."""
    return tag if tag == "O" or tag.startswith(PREFIXES) else f"I-{tag}"


def to_inside(tag: str) -> str:
    """The tag a continuation sub-token gets under label_all_tokens: B-X becomes I-X."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag
