"""Named-entity recognition as token classification: CoNLL / JSON lines in, seqeval metrics out."""

from __future__ import annotations

import json
import logging
import math
import os
import re
from dataclasses import dataclass, field
from itertools import islice
from typing import TYPE_CHECKING, TextIO

from accel_trainer.errors import DataError, OtherTaskData
from accel_trainer.tasks.base import (
    IGNORE_INDEX,
    MetaCollator,
    PredictionInput,
    Task,
    TaskOptions,
    log_length_report,
    quoted,
)
from accel_trainer.tasks.demo import NER_DEMO_FILES
from accel_trainer.tasks.files import (
    LINE_KINDS,
    check_readable,
    entity_markers_in,
    json_line,
    json_lines,
    json_object,
    line_kind,
    utf8_problem,
)
from accel_trainer.tasks.text import (
    CONLL_SNIFF_LINES,
    TAG_SHAPE,
    WORD_SPLITS,
    conll_evidence,
    document_record,
    learned_word_split,
    one_word_per_line,
    read_documents,
    text_of_record,
    visible_span,
)
from accel_trainer.tasks.windows import sliding_windows, special_affixes, window_owners

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

TAG_SCHEMES = ("bio", "iobes", "none")
TAG_PATTERNS = {
    "bio": re.compile(r"^(O|[BI]-.+)$"),
    "iobes": re.compile(r"^(O|[BIES]-.+)$"),
}
JSON_SUFFIXES = (".json", ".jsonl")
PREFIXES = ("B-", "I-", "E-", "S-")
REPORT_AVERAGES = ("micro avg", "macro avg", "weighted avg")  # seqeval's rows beside the types
# CoNLL-2003 has 4 columns and some files 5 (with a lemma); a run of 6 words is a sentence.
SENTENCE_WORDS = 6
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


def read_conll(path: str, what: str, tag_scheme: str, labelled: bool = True) -> list[dict]:
    """Sentences of a CoNLL file: token in the first column, tag in the last. Unlabelled input
    (for predict) may have the token column only."""
    sentences: list[dict] = []
    tokens: list[str] = []
    tags: list[str] = []
    start_line = 0
    width = None  # (columns, line number) of the sentence's first line with a tag

    def flush() -> None:
        nonlocal width
        if tokens:
            sentences.append({"tokens": list(tokens), "ner_tags": list(tags), "line": start_line})
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
    for number, where, record in json_lines(path, what, OTHER_FORMATS):
        original = json_line(record)  # predict writes each record back as it was read
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
        if not labelled:  # every record gets its output line, an empty one too
            sentences.append({"tokens": tokens, "ner_tags": tags, "line": number,
                              "record": original})  # fmt: skip
        elif tokens:
            sentences.append({"tokens": tokens, "ner_tags": tags, "line": number})
    return sentences


def replace_invisible_words(tokenizer, sentences: list[list[str]]) -> list[list[str]]:
    """Words the tokenizer turns into nothing (empty strings, zero-width or control characters)
    become its unknown token, so that every word keeps a position, a label and a prediction."""
    # verbose=False: the callers truncate or window long sentences, so the length warning misleads
    encoded = tokenizer(
        sentences, is_split_into_words=True, add_special_tokens=False, verbose=False
    )
    fixed = []
    for index, words in enumerate(sentences):
        seen = set(encoded.word_ids(index))
        if len(seen) == len(words):
            fixed.append(words)
        else:
            fixed.append([w if i in seen else tokenizer.unk_token for i, w in enumerate(words)])
    return fixed


def seqeval_tag(tag: str) -> str:
    """The tag seqeval reads: an unprefixed tag X (--tag_scheme none, e.g. PER or ATE) becomes
    I-X, so that a run of X is one entity of type X (IO tagging) instead of seqeval cutting X
    into a prefix X[0] and a type X[1:]."""
    return tag if tag == "O" or tag.startswith(PREFIXES) else f"I-{tag}"


def to_inside(tag: str) -> str:
    """The tag a continuation sub-token gets under label_all_tokens: B-X becomes I-X."""
    return "I-" + tag[2:] if tag.startswith("B-") else tag


def align_labels(
    word_ids: list[int | None],
    tags: list[str],
    label2id: dict[str, int],
    label_all_tokens: bool,
) -> list[int]:
    """One label per sub-token: the word's tag on its first sub-token, -100 elsewhere."""
    labels = []
    previous = None
    for word_id in word_ids:
        if word_id is None:
            labels.append(IGNORE_INDEX)
        elif word_id != previous:
            labels.append(label2id[tags[word_id]])
        elif label_all_tokens:
            inside = to_inside(tags[word_id])
            labels.append(label2id.get(inside, label2id[tags[word_id]]))
        else:
            labels.append(IGNORE_INDEX)
        previous = word_id
    return labels


@dataclass
class NerOptions(TaskOptions):
    """Options of --task ner."""

    tag_scheme: str = field(
        default="bio",
        metadata={
            "help": "Check every tag against this scheme: bio (O, B-X, I-X), iobes (also E-X, "
            "S-X), or none.",
            "choices": list(TAG_SCHEMES),
        },
    )
    label_all_tokens: bool = field(
        default=False,
        metadata={
            "help": "Train on every sub-token (B- continues as I-), not only the first of a "
            "word. Evaluation always scores words."
        },
    )


class NerTask(Task):
    """Token classification with BIO/IOBES tags, scored at entity level by seqeval."""

    name = "ner"
    label_key = "labels"
    token_level_labels = True
    auto_model_class_name = "AutoModelForTokenClassification"
    pipeline_tag = "token-classification"
    options_class = NerOptions
    data_formats = ("auto", "conll", "jsonl", "text")
    output_formats = ("auto", "conll", "jsonl", "spans")
    reads_text = True
    example_word = "sentence"
    row_word = "window"  # evaluation: a long sentence is scored in several

    def __init__(
        self, label_all_tokens: bool = False, tag_scheme: str = "bio", word_split: str = ""
    ):
        self.label_all_tokens = label_all_tokens
        self.tag_scheme = tag_scheme
        # How raw text is cut into words for predict; learned from the training words.
        self.word_split = word_split or "punctuation"
        self.truncated: dict[str, int] = {}
        self.long_sentences = 0  # eval sentences over max_seq_length, scored in windows
        self.input_kind = ""  # how read_for_prediction read --input_file: conll, jsonl, text...

    @classmethod
    def from_settings(cls, settings: dict, model_dir: str) -> NerTask:
        scheme = settings.get("tag_scheme", "bio")
        if scheme not in TAG_SCHEMES:
            raise KeyError("tag_scheme")
        word_split = settings.get("word_split", "punctuation")  # older models: punctuation
        if word_split not in WORD_SPLITS:
            raise KeyError("word_split")
        return cls(tag_scheme=scheme, word_split=word_split)

    def settings(self) -> dict:
        return {"task": self.name, "tag_scheme": self.tag_scheme, "word_split": self.word_split}

    def learn_from_training_data(self, train: Dataset) -> None:
        self.word_split = learned_word_split(train["tokens"])

    def tokenization_settings(self) -> dict:
        return {**self.settings(), "label_all_tokens": self.label_all_tokens}

    def usage_code(self, model_path: str) -> str:
        """The token-classification pipeline, each word tagged by its first sub-token (as the
        model was trained and as `predict` reads it; "simple" would cut entities inside words)."""
        return (
            "from transformers import pipeline\n\n"
            f'ner = pipeline("token-classification", model={quoted(model_path)}, '
            'aggregation_strategy="first")\n'
            'print(ner("John Smith moved to Oslo in May ."))\n'
        )

    def words(self, dataset: Dataset) -> list[list[str]]:
        """The pre-split words of each example, for building a tokenizer vocabulary."""
        return dataset["tokens"]

    def example_labels(self, dataset: Dataset) -> list[list[str]]:
        return dataset["ner_tags"]

    def read_examples(self, path: str, what: str, data_format: str, labelled: bool) -> list[dict]:
        file_format = resolve_format(path, data_format)
        if file_format == "semeval2010":
            raise DataError(
                f"{what}: --data_format semeval2010 is for --task re. Use conll or jsonl for NER."
            )
        if file_format == "text":
            raise DataError(
                f"{what}: --data_format text is raw text for `accel-trainer predict`; training "
                "and evaluation need tagged words. Use conll or jsonl."
            )
        if file_format == "jsonl":
            return read_jsonl(path, what, self.tag_scheme, labelled)
        return read_conll(path, what, self.tag_scheme, labelled)

    def read_for_prediction(self, source: PredictionInput) -> Dataset:
        """Tokenised sentences (CoNLL, JSON lines of tokens) or raw text documents (plain text,
        JSON lines of `text`), split into words the way the training words were split."""
        from datasets import Dataset

        path, what = source.input_file, f"--input_file {source.input_file}"
        check_readable(path, "--input_file")
        try:
            kind = self.input_kind = self.prediction_input(source)
            if kind == "conll" or kind == "jsonl":
                return self.read(path, "--input_file", kind, labelled=False)
            if kind == "text":
                documents = read_documents(path, source.text_format or "lines", self.word_split)
            else:
                documents = [
                    {
                        **document_record(text_of_record(record, where), number, self.word_split),
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
            "at whitespace and around punctuation"
            if self.word_split == "punctuation"
            else "at whitespace",
        )
        return Dataset.from_list(documents, features=document_features(kind == "jsonl-text"))

    def prediction_input(self, source: PredictionInput) -> str:
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
            lines = list(islice(handle, CONLL_SNIFF_LINES))
        for number, line in enumerate(lines, start=1):
            if line.strip():  # a JSON lines or SemEval file is no text to find entities in
                problem = not_conll(line, f"{what} line {number}")
                if problem is not None:
                    raise problem
                break
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

    def read_hub(self, name: str, config_name: str | None, split: str) -> Dataset:
        """One split of a `datasets` dataset with tokens and (class-label or string) ner_tags."""
        from datasets import Features, Sequence, Value, load_dataset

        what = f"--dataset_name {name} split {split!r}"
        try:
            dataset = load_dataset(name, config_name, split=split)
        except Exception as error:  # the loader raises many kinds: missing, offline, bad split
            message = " ".join(str(error).split())
            raise DataError(
                f"{what} could not be loaded: {message} Check the name and the split (train and "
                "validation are needed), and the network for hub datasets."
            ) from None
        missing = {"tokens", "ner_tags"} - set(dataset.column_names)
        if missing:
            raise DataError(
                f"{what} lacks columns {sorted(missing)}: got {dataset.column_names}. "
                "Use a dataset with 'tokens' and 'ner_tags'."
            )
        tag_feature = dataset.features["ner_tags"]
        names = getattr(getattr(tag_feature, "feature", None), "names", None)

        def as_strings(example: dict, index: int) -> dict:
            tags = example["ner_tags"]
            if names is not None:
                tags = [names[tag] for tag in tags]
            elif not all(isinstance(tag, str) for tag in tags):
                raise DataError(
                    f"{what} row {index + 1} has ner_tags that are neither strings nor class "
                    f"labels with names: got {tags[:5]!r}. Give tag names."
                )
            for tag in tags:
                check_tag(tag, self.tag_scheme, f"{what} row {index + 1}")
            return {"tokens": example["tokens"], "ner_tags": tags, "line": index + 1}

        # Explicit string features: otherwise map casts the names back to class-label ids.
        string_tags = Features(
            {
                "tokens": Sequence(Value("string")),
                "ner_tags": Sequence(Value("string")),
                "line": Value("int64"),
            }
        )
        dataset = dataset.map(
            as_strings,
            with_indices=True,
            remove_columns=dataset.column_names,
            features=string_tags,
        )
        # As in CoNLL files: document separators and empty sentences are no sentences.
        dataset = dataset.filter(lambda example: example["tokens"] not in ([], ["-DOCSTART-"]))
        if len(dataset) == 0:
            raise DataError(f"{what} is empty: got 0 sentences. Use a split with data.")
        return dataset

    def tokenizer_options(self, tokenizer: PreTrainedTokenizerBase) -> dict:
        """Byte-level tokenizers must encode pre-split words as if preceded by a space, as
        inside a sentence."""
        return {"add_prefix_space": True} if is_byte_level(tokenizer) else {}

    def tokenize(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        label2id: dict[str, int],
        max_seq_length: int,
        for_training: bool,
        map_options: dict | None = None,
    ) -> Dataset:
        """Training: one truncated sequence per sentence. Evaluation: sliding windows, so that
        every gold word of a long sentence is scored once."""
        if not for_training:
            return self.encode_windows(dataset, tokenizer, max_seq_length, label2id, map_options)

        def encode(batch: dict) -> dict:
            encoded = tokenizer(
                replace_invisible_words(tokenizer, batch["tokens"]),
                is_split_into_words=True,
                truncation=True,
                max_length=max_seq_length,
            )
            encoded["labels"] = []
            encoded["truncated"] = []
            for index, tags in enumerate(batch["ner_tags"]):
                word_ids = encoded.word_ids(index)
                encoded["labels"].append(
                    align_labels(word_ids, tags, label2id, self.label_all_tokens)
                )
                last_word = max((w for w in word_ids if w is not None), default=-1)
                encoded["truncated"].append(last_word < len(tags) - 1)
            return encoded

        tokenized = dataset.map(
            encode, batched=True, remove_columns=dataset.column_names, **(map_options or {})
        )
        self.truncated["train"] = sum(tokenized["truncated"])
        return tokenized.remove_columns("truncated")

    def encode_for_prediction(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int,
        map_options: dict | None = None,
    ) -> Dataset:
        return self.encode_windows(dataset, tokenizer, max_seq_length, None, map_options)

    def encode_windows(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int,
        label2id: dict[str, int] | None = None,
        map_options: dict | None = None,
    ) -> Dataset:
        """Rows of at most max_seq_length sub-tokens, overlapping by half. Each word belongs to
        the one window where its first sub-token sees the most context: `word_index` holds the
        word's position there (-100 elsewhere), and `labels` its gold tag when label2id is given.
        `example_id` is the sentence's index in `dataset`."""
        prefix, suffix = special_affixes(tokenizer)
        size = max_seq_length - len(prefix) - len(suffix)
        before, after = [IGNORE_INDEX] * len(prefix), [IGNORE_INDEX] * len(suffix)

        def encode(batch: dict, indices: list[int]) -> dict:
            encoded = tokenizer(
                replace_invisible_words(tokenizer, batch["tokens"]),
                is_split_into_words=True,
                add_special_tokens=False,
                verbose=False,
            )
            rows: dict = {
                "input_ids": [],
                "attention_mask": [],
                "word_index": [],
                "example_id": [],
                "long": [],
            }
            if label2id is not None:
                rows["labels"] = []
            for i, example_id in enumerate(indices):
                ids, word_ids = encoded["input_ids"][i], encoded.word_ids(i)
                windows = sliding_windows(len(ids), size)
                owners = window_owners(windows)
                first_sub_token = [
                    word is not None and (position == 0 or word_ids[position - 1] != word)
                    for position, word in enumerate(word_ids)
                ]
                for number, (start, end) in enumerate(windows):
                    words = [
                        word_ids[p] if first_sub_token[p] and owners[p] == number else IGNORE_INDEX
                        for p in range(start, end)
                    ]
                    word_index = before + words + after
                    rows["input_ids"].append(prefix + ids[start:end] + suffix)
                    rows["attention_mask"].append([1] * len(word_index))
                    rows["word_index"].append(word_index)
                    rows["example_id"].append(example_id)
                    rows["long"].append(len(windows) > 1)
                    if label2id is not None:
                        tags = batch["ner_tags"][i]
                        rows["labels"].append(
                            [
                                IGNORE_INDEX if w == IGNORE_INDEX else label2id[tags[w]]
                                for w in word_index
                            ]
                        )
            return rows

        encoded = dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            **(map_options or {}),
        )
        self.long_sentences = len(
            set(e for e, long in zip(encoded["example_id"], encoded["long"], strict=True) if long)
        )
        return encoded.remove_columns("long")

    def assemble_words(self, rows: dict, word_counts: list[int], id2label: dict[int, str]):
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

    def length_report(self, max_seq_length: int, num_train: int, eval_raw: Dataset | None) -> dict:
        """Training truncates long sentences; evaluation scores them in sliding windows."""
        num_eval = len(eval_raw) if eval_raw is not None else 0
        truncated, windowed = self.truncated.get("train", 0), self.long_sentences
        stats = {"train_truncated_sentences": truncated, "eval_windowed_sentences": windowed}
        longer = f"longer than --max_seq_length {max_seq_length} sub-tokens"
        messages = {
            "train_truncated_sentences": f"{truncated} of {num_train} training sentences are "
            f"{longer}: they are truncated for training, none dropped. Raise --max_seq_length to "
            "train on their last words too.",
            "eval_windowed_sentences": f"{windowed} of {num_eval} eval sentences are {longer}: "
            "they are scored in sliding windows, every word counted, none dropped or truncated.",
        }
        log_length_report(stats, messages, lost={"train_truncated_sentences"})
        return stats

    def write_predictions(
        self,
        raw: Dataset,
        rows: dict,
        id2label: dict[int, str],
        handle: TextIO,
        source: PredictionInput,
    ) -> None:
        """By --output_format (auto: CoNLL for CoNLL, JSON lines of tags for JSON lines of
        tokens, spans for raw text): `conll` writes word and tag lines; `jsonl` the input
        records with `ner_tags` (raw text also gets its `tokens` and their `offsets`); `spans`
        the input records with their `entities` (character offsets into raw text, word
        indices into tokens, end exclusive)."""
        tokens = raw["tokens"]
        tags, scores = self.assemble_words(rows, [len(words) for words in tokens], id2label)
        kind = self.input_kind  # as read_for_prediction read it
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
            for words, words_tags in zip(tokens, tags, strict=True):
                if words:
                    handle.writelines(f"{w}\t{t}\n" for w, t in zip(words, words_tags, strict=True))
                    handle.write("\n")
            return
        records = self.input_records(raw, kind)
        warn_of_replaced_keys(records, output, kind, source.input_file)
        for index, record in enumerate(records):
            if output == "jsonl":
                record["ner_tags"] = tags[index]
                if is_text:
                    record["tokens"], record["offsets"] = tokens[index], raw[index]["offsets"]
            else:
                record["entities"] = self.entities(raw[index], tags[index], scores[index], is_text)
            handle.write(json_line(record))

    def input_records(self, raw: Dataset, kind: str) -> list[dict]:
        """Each example as the record its output line starts from: the input's own JSON
        object, or its line number and its text (raw text) or tokens (CoNLL)."""
        if kind in ("text", "conll"):
            key = "text" if kind == "text" else "tokens"
            return [
                {"line": line, key: value}
                for line, value in zip(raw["line"], raw[key], strict=True)
            ]
        return [json.loads(record) for record in raw["record"]]

    def entities(self, example: dict, tags: list[str], scores: list[float], is_text: bool):
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

    def demo_files(self, folder: str) -> tuple[str, str]:
        train, dev = NER_DEMO_FILES
        return os.path.join(folder, train), os.path.join(folder, dev)

    def demo_corpus(self) -> tuple[str, str]:
        from accel_trainer.tasks.demo import ner_demo_texts

        return ner_demo_texts()

    def collator(self, tokenizer: PreTrainedTokenizerBase):
        from transformers import DataCollatorForTokenClassification

        return MetaCollator(
            DataCollatorForTokenClassification(tokenizer, label_pad_token_id=IGNORE_INDEX),
            tokenizer,
        )

    def compute_metrics(
        self,
        predictions: list[np.ndarray],
        labels: list[np.ndarray],
        id2label: dict[int, str],
        example_ids: list | None = None,
    ) -> dict[str, float]:
        """seqeval over sentences; the windows of one sentence (same example id, in order) are
        joined back before entities are read."""
        from seqeval.metrics import accuracy_score, classification_report
        from seqeval.scheme import IOBES

        if example_ids is None:
            example_ids = list(range(len(predictions)))
        sentences: dict[int, tuple[list[str], list[str]]] = {}
        for example_id, predicted, gold in zip(example_ids, predictions, labels, strict=True):
            keep = gold != IGNORE_INDEX
            true, pred = sentences.setdefault(int(example_id), ([], []))
            true.extend(id2label[int(i)] for i in gold[keep])
            pred.extend(id2label[int(i)] for i in predicted[keep])
        true_tags = [[seqeval_tag(tag) for tag in true] for true, _ in sentences.values()]
        predicted_tags = [[seqeval_tag(tag) for tag in pred] for _, pred in sentences.values()]
        strict = {"mode": "strict", "scheme": IOBES} if self.tag_scheme == "iobes" else {}
        report = classification_report(
            true_tags, predicted_tags, output_dict=True, zero_division=0, **strict
        )
        micro = report["micro avg"]
        metrics = {
            "precision": float(micro["precision"]),
            "recall": float(micro["recall"]),
            "f1": float(micro["f1-score"]),
            "accuracy": float(accuracy_score(true_tags, predicted_tags)),
        }
        for entity_type, scores in report.items():
            if entity_type not in REPORT_AVERAGES:
                metrics[f"f1_{entity_type}"] = float(scores["f1-score"])
        # A type absent from this evaluation scores 0, so every evaluation has the same keys
        # (--metric_for_best_model f1_TYPE is checked against them before training).
        for name in self.metric_names(list(id2label.values())):
            metrics.setdefault(name, 0.0)
        return metrics

    def metric_names(self, labels: list[str]) -> list[str]:
        """Every metric compute_metrics returns for these labels, without the eval_ prefix."""
        from seqeval.metrics.sequence_labeling import get_entities
        from seqeval.scheme import IOBES

        # The type seqeval reads from one tag: strict IOBES mode and the default mode each
        # parse it their own way (B-A- is type A in one, A- in the other).
        if self.tag_scheme == "iobes":
            types = {IOBES(seqeval_tag(label)).tag for label in labels if label != "O"}
        else:
            types = {get_entities([seqeval_tag(label)])[0][0] for label in labels if label != "O"}
        return ["precision", "recall", "f1", "accuracy", *(f"f1_{t}" for t in sorted(types))]


def is_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer pre-tokenizes bytes (GPT-2/RoBERTa style BPE)."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    return "ByteLevel" in json.dumps(backend.get("pre_tokenizer"))


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
