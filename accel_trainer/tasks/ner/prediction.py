"""NER `predict`: raw text documents read for prediction, and the predictions written as CoNLL,
JSON lines of tags, or entity spans."""

from __future__ import annotations

import json
import logging
import math
from typing import TYPE_CHECKING, TextIO

from accel_trainer.errors import DataError
from accel_trainer.tasks.base import IGNORE_INDEX, PredictionInput
from accel_trainer.tasks.files import json_line, json_lines, utf8_problem
from accel_trainer.tasks.ner.tags import seqeval_tag
from accel_trainer.tasks.text import document_record, read_documents, text_of_record, visible_span

if TYPE_CHECKING:
    from datasets import Dataset

logger = logging.getLogger("accel_trainer")


def read_text_documents(source: PredictionInput, kind: str, word_split: str) -> Dataset:
    """Raw text documents of --input_file, plain text ("text") or JSON lines with a `text` each
    ("jsonl-text"), split into words the way the training words were split (`word_split`)."""
    from datasets import Dataset

    path, what = source.input_file, f"--input_file {source.input_file}"
    try:
        if kind == "text":
            documents = read_documents(path, source.text_format or "lines", word_split)
        else:
            documents = [
                {
                    **document_record(text_of_record(record, where), number, word_split),
                    "record": json_line(record),
                }
                for number, where, record in json_lines(path, what)
            ]
    except UnicodeDecodeError:
        raise utf8_problem(path, what) from None
    if not documents:
        raise DataError(f"{what} is empty: got 0 documents. Give a file with some text.")
    logger.info(
        "predict: %d document%s of %s, split into words %s (as the training words were)",
        len(documents),
        "" if len(documents) == 1 else "s",
        "JSON lines text" if kind == "jsonl-text" else f"plain text ({kind_words(source)})",
        "at whitespace and around punctuation" if word_split == "punctuation" else "at whitespace",
    )
    return Dataset.from_list(documents, features=document_features(kind == "jsonl-text"))


def write_predictions(
    raw: Dataset,
    rows: dict,
    id2label: dict[int, str],
    handle: TextIO,
    source: PredictionInput,
    kind: str,
) -> None:
    """By --output_format (auto: CoNLL for CoNLL, JSON lines of tags for JSON lines of
    tokens, spans for raw text): `conll` writes word and tag lines; `jsonl` the input
    records with `ner_tags` (raw text also gets its `tokens` and their `offsets`); `spans`
    the input records with their `entities` (character offsets into raw text, word
    indices into tokens, end exclusive). `kind` is what the input held (see input_kind)."""
    tokens = raw["tokens"]
    tags, scores = assemble_words(rows, [len(words) for words in tokens], id2label)
    is_text = kind in ("text", "jsonl-text")
    output = source.output_format
    if output == "auto":
        output = {"conll": "conll", "jsonl": "jsonl"}.get(kind, "spans")
    if output == "conll":
        empty = sum(1 for words in tokens if not words)
        if empty:
            logger.warning(
                "predict: %d input record(s) without words have no lines in CoNLL output "
                "(CoNLL has no empty sentence); --output_format jsonl keeps a line for each",
                empty,
            )
        marked = "document_start" in raw.column_names  # CoNLL input with -DOCSTART- lines
        starts = raw["document_start"] if marked else [False] * len(tokens)
        for words, words_tags, start in zip(tokens, tags, starts, strict=True):
            if start:  # the input's -DOCSTART- line before this sentence
                handle.write("-DOCSTART-\tO\n\n")
            if words:
                handle.writelines(f"{w}\t{t}\n" for w, t in zip(words, words_tags, strict=True))
                handle.write("\n")
        return
    records = input_records(raw, kind)
    warn_of_replaced_keys(records, output, kind, source.input_file)
    for index, record in enumerate(records):
        if output == "jsonl":
            record["ner_tags"] = tags[index]
            if is_text:
                record["tokens"], record["offsets"] = tokens[index], raw[index]["offsets"]
        else:
            record["entities"] = entities(raw[index], tags[index], scores[index], is_text)
        handle.write(json_line(record))


def input_records(raw: Dataset, kind: str) -> list[dict]:
    """Each example as the record its output line starts from: the input's own JSON
    object, or its line number and its text (raw text) or tokens (CoNLL)."""
    if kind in ("text", "conll"):
        key = "text" if kind == "text" else "tokens"
        return [
            {"line": line, key: value} for line, value in zip(raw["line"], raw[key], strict=True)
        ]
    return [json.loads(record) for record in raw["record"]]


def entities(example: dict, tags: list[str], scores: list[float], is_text: bool):
    """The entities of one example's tags: type, start, end, surface text and score."""
    found = []
    for entity_type, first, last, score in entity_spans(tags, scores):
        if is_text:
            start, end = visible_span(
                example["text"], example["offsets"][first][0], example["offsets"][last - 1][1]
            )
            if start == end:
                continue  # only invisible characters: nothing to point at
            text = example["text"][start:end]
        else:
            start, end = first, last
            text = " ".join(example["tokens"][first:last])
        found.append(
            {"start": start, "end": end, "text": text, "type": entity_type,
             "score": round(score, 4) if math.isfinite(score) else None}
        )  # fmt: skip
    return found


def assemble_words(rows: dict, word_counts: list[int], id2label: dict[int, str]):
    """Per-sentence word tags and their probabilities from windowed predictions; a word
    with no sub-token (which the model cannot see) gets "O" and probability 1."""
    tags = [["O"] * count for count in word_counts]
    scores = [[1.0] * count for count in word_counts]
    for example_id, words, predicted, confidence in zip(
        rows["example_id"],
        rows["word_index"],
        rows["predictions"],
        rows["confidence"],
        strict=True,
    ):
        for word, label_id, probability in zip(words, predicted, confidence, strict=True):
            if word != IGNORE_INDEX:
                tags[int(example_id)][int(word)] = id2label[int(label_id)]
                scores[int(example_id)][int(word)] = float(probability)
    return tags, scores


def warn_of_replaced_keys(records: list[dict], output: str, kind: str, path: str) -> None:
    """Warn when the output replaces fields the input records already have (an `entities`
    list of the user's own, say); a tokenised record's own tokens and ner_tags are its input."""
    written = {"entities"} if output == "spans" else {"ner_tags", "tokens", "offsets"}
    if kind == "jsonl":
        written -= {"tokens", "ner_tags"}
    present = sorted({key for record in records for key in record.keys() & written})
    if present:
        logger.warning(
            "predict: records of %s already have %s: the output lines hold the predictions in "
            "their place (the input file is not changed)",
            path,
            ", ".join(map(repr, present)),
        )


def entity_spans(tags: list[str], scores: list[float]) -> list[tuple[str, int, int, float]]:
    """(type, first word, last word + 1, mean probability of its words) for each entity of
    one sentence's tags, read by seqeval as the evaluation reads them."""
    from seqeval.metrics.sequence_labeling import get_entities

    found = []
    for entity_type, first, last in get_entities([seqeval_tag(tag) for tag in tags]):
        found.append(
            (entity_type, first, last + 1, sum(scores[first : last + 1]) / (last + 1 - first))
        )
    return found


def document_features(with_record: bool):
    """The columns of raw text documents (fixed, so that a file of empty documents reads too),
    and the JSON line each came from (`record`) when read from JSON lines."""
    from datasets import Features, Sequence, Value

    columns = {
        "tokens": Sequence(Value("string")),
        "ner_tags": Sequence(Value("string")),
        "line": Value("int64"),
        "text": Value("string"),
        "offsets": Sequence(Sequence(Value("int64"))),
    }
    return Features({**columns, "record": Value("string")} if with_record else columns)


def kind_words(source: PredictionInput) -> str:
    if source.text_format == "document":
        return "the whole file as one document"
    return "one document per line"
