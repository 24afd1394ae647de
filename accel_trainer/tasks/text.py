"""Raw text for NER prediction: documents read from plain text or JSON lines, split into words
with character offsets the way the training words were split, and the entities of tagged words
as character spans of the original text."""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Iterable

from accel_trainer.errors import DataError

# How a text is cut into words: at whitespace, and around every punctuation character as
# BERT's pre-tokenizer does ("(IL-2)," is ( IL - 2 ) ,), or at whitespace only.
WORD_SPLITS = ("punctuation", "whitespace")
TEXT_FORMATS = ("lines", "document")  # one document per line, or the whole file as one
# A training word that is punctuation only, or a word with punctuation attached at an edge.
PUNCTUATION_ONLY = re.compile(r"^[^\w\s]+$")
PUNCTUATION_ATTACHED = re.compile(r"^[^\w\s]+\w|\w[^\w\s]+$")
LINE_BREAK = re.compile(r"\r\n|\r|\n")  # Unix, Windows and old Mac line ends
CONLL_SNIFF_LINES = 200  # lines looked at to tell a CoNLL file from plain text
# A tag of a type the model may not have: B-MISC, S-Chemical (not a word like E-mail).
TAG_SHAPE = re.compile(r"^[BIESLU]-[A-Z]\S*$")
JSON_TYPES = {type(None): "null", bool: "boolean", int: "number", float: "number",
              list: "array", dict: "object"}  # fmt: skip


def split_words(text: str, how: str) -> list[tuple[str, int, int]]:
    """(word, start, end) for each word of `text`; text[start:end] == word, in characters."""
    from tokenizers import pre_tokenizers

    splitter = (
        pre_tokenizers.BertPreTokenizer()
        if how == "punctuation"
        else pre_tokenizers.WhitespaceSplit()
    )
    return [(word, start, end) for word, (start, end) in splitter.pre_tokenize_str(text)]


def learned_word_split(sentences: Iterable[list[str]]) -> str:
    """The split that reproduces the training words: "punctuation" where punctuation stands
    as words of its own (CoNLL-2003, BC5CDR, NCBI-disease), "whitespace" where it mostly
    sticks to the words around it ("Oslo," as one word)."""
    alone = attached = 0
    for words in sentences:
        for word in words:
            if PUNCTUATION_ONLY.match(word):
                alone += 1
            elif PUNCTUATION_ATTACHED.search(word):
                attached += 1
    return "whitespace" if attached > alone else "punctuation"


def document_record(text: str, line: int, how: str) -> dict:
    """One document as a prediction example: its words, placeholder tags and offsets."""
    words = split_words(text, how)
    return {
        "tokens": [word for word, _, _ in words],
        "ner_tags": ["O"] * len(words),
        "line": line,
        "text": text,
        "offsets": [[start, end] for _, start, end in words],
    }


def read_documents(path: str, text_format: str, how: str) -> list[dict]:
    """The documents of a plain-text file: each line without its line break (\n, \r\n or a
    lone \r), or the whole file (newlines kept as they are, so offsets index the file's text)."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        text = handle.read()
    if text_format == "document":
        return [document_record(text, 1, how)] if text else []
    lines = LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()  # the break that ends the last line starts no document
    return [document_record(line, number, how) for number, line in enumerate(lines, start=1)]


def visible_span(text: str, start: int, end: int) -> tuple[int, int]:
    """[start, end) without the invisible characters (zero-width spaces, BOMs, control
    characters: Unicode categories Cf and Cc) that stick to the span's first or last word."""
    while start < end and unicodedata.category(text[start]) in ("Cf", "Cc"):
        start += 1
    while end > start and unicodedata.category(text[end - 1]) in ("Cf", "Cc"):
        end -= 1
    return start, end


def text_of_record(record: dict, where: str) -> str:
    """The `text` of a JSON lines document record."""
    if "text" not in record:
        raise DataError(
            f"{where} has no 'text': got keys {sorted(record)}. Give every record of a document "
            'file a "text" string, e.g. {"text": "John lives in Oslo."}.'
        )
    text = record["text"]
    if not isinstance(text, str):
        raise DataError(
            f"{where} has a 'text' that is no string: got {json.dumps(text)[:60]} (a JSON "
            f"{JSON_TYPES.get(type(text), 'value')}). Give the document as a string."
        )
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as error:  # an escaped lone surrogate, "\udfff"
        raise DataError(
            f"{where} has a 'text' with a lone UTF-16 surrogate: got {text[error.start]!r} at "
            f"character {error.start}. Write the character it stands for, or remove it."
        ) from None
    return text


def conll_evidence(lines: Iterable[str], labels: Iterable[str]) -> bool | str:
    """Whether the non-blank lines of a file's start are CoNLL token lines rather than
    sentences of text: True when every line is a single token, or when every line with columns
    ends in a tag (the model's, or any B-/I-/E-/S- tag) and those tags vary, or they form a
    table of two columns; False when some line's last word is no tag, or one tag ends lines of
    different lengths, as sentences do. A table of three or more columns with one tag throughout
    ("Blood type O" on every line) is no evidence either way: its first line is returned, for
    an error that asks which it is."""
    known = set(labels) | {"O"}
    rows = [line.split() for line in lines]
    rows = [columns for columns in rows if columns and columns[0] != "-DOCSTART-"]
    tagged = [columns for columns in rows if len(columns) > 1]
    if not rows:
        return False  # blank lines only: plain text, each blank line an empty document
    if not tagged:
        return True
    if any(columns[-1] not in known and not TAG_SHAPE.match(columns[-1]) for columns in tagged):
        return False
    if len({columns[-1] for columns in tagged}) > 1:
        return True  # the reader names any line whose columns differ from its sentence's
    widths = {len(columns) for columns in tagged}
    if len(widths) > 1:
        return False
    return True if widths == {2} else " ".join(tagged[0])


def one_word_per_line(lines: Iterable[str]) -> bool:
    """Whether every non-blank line is a single word: CoNLL without tags, or a text of one-word
    documents; the two read differently (sentences up to a blank line, or a document a line)."""
    return all(len(line.split()) <= 1 for line in lines)
