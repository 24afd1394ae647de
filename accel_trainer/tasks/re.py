"""Relation extraction as classification of one marked entity pair per example."""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from accel_trainer.errors import ConfigError, DataError, OtherTaskData
from accel_trainer.tasks.base import (
    PredictionInput,
    Task,
    TaskOptions,
    example_predictions,
    log_length_report,
    quoted,
)
from accel_trainer.tasks.demo import RE_DEMO_FILES
from accel_trainer.tasks.files import (
    LINE_KINDS,
    SEMEVAL_ID_LINE,
    json_line,
    json_lines,
    json_object,
    line_kind,
)
from accel_trainer.tasks.windows import special_affixes, window_around

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

SEMEVAL_MARKERS = ["<e1>", "</e1>", "<e2>", "</e2>"]
SEMEVAL_COMMENT_LINE = re.compile(r"^comment(:|$)", re.IGNORECASE)
RE_METRICS = ["precision", "recall", "f1", "macro_f1", "accuracy"]
DEMO_NEGATIVE_LABEL = "no_relation"


def occurrences(text: str, marker: str, after: int = 0) -> list[int]:
    found, position = [], text.find(marker, after)
    while position >= 0:
        found.append(position)
        position = text.find(marker, position + 1)
    return found


def space_after(text: str, position: int, marker: str) -> bool:
    """Whether whitespace follows the marker at `position`, as after an opening `[[ `."""
    end = position + len(marker)
    return end == len(text) or text[end].isspace()


def space_before(text: str, position: int) -> bool:
    """Whether whitespace precedes `position`, as before a closing ` ]]`."""
    return position == 0 or text[position - 1].isspace()


def parse_marked_text(text: str, markers: list[str], where: str) -> dict:
    """Plain text and the head/tail character spans of a text with inline markers. Marker
    strings may also occur as text (ChemProt has `>>` and `[[` in chemical names): an opening
    marker that appears more than once counts where a space follows it, as in `[[ X ]]` (or,
    in a run like `[[[`, at its first place), and the closing marker is the first one after
    it; after a spaced opening marker, the first closing one with a space before it."""
    spans = []
    for opening, closing, name in (
        (markers[0], markers[1], "head"),
        (markers[2], markers[3], "tail"),
    ):
        starts = occurrences(text, opening)
        if not starts:
            raise DataError(
                f"{where} has no {name} marker {opening!r}: got {text[:80]!r}. Mark both "
                f"entities with {' '.join(markers)} (the markers a model is trained with; "
                "train with --entity_markers to use the ones your files have)."
            )
        alone = [p for p in starts if space_after(text, p, opening)]
        one_run = starts[-1] - starts[0] < len(opening)  # overlapping, as in "[[["
        if len(alone) == 1:
            start = alone[0]
        elif len(starts) == 1 or (one_run and not alone):
            start = starts[0]
        else:
            raise DataError(
                f"{where} has the {name} marker {opening!r} twice: got {text[:80]!r}. Mark "
                "exactly one head and one tail."
            )
        ends = occurrences(text, closing, start + len(opening))
        if space_after(text, start, opening):
            ends = [p for p in ends if space_before(text, p)] or ends
        end = (ends or [-1])[0]
        if end < 0:
            raise DataError(
                f"{where} has an unbalanced {name} marker: {opening!r} without a {closing!r} "
                f"after it: got {text[:80]!r}. Close the entity."
            )
        spans.append((start, start + len(opening), end, end + len(closing)))
    # Remove the four markers, right to left, and map entity spans into the plain text.
    cuts = sorted([(s[0], s[1]) for s in spans] + [(s[2], s[3]) for s in spans], reverse=True)
    if any(a[0] < b[1] for a, b in zip(cuts, cuts[1:], strict=False)):
        raise DataError(f"{where} has markers inside other markers: got {text[:80]!r}.")
    plain = text
    for cut_start, cut_end in cuts:
        plain = plain[:cut_start] + plain[cut_end:]

    def shifted(position: int) -> int:
        return position - sum(e - s for s, e in cuts if e <= position)

    entities = []
    for _, open_end, close_start, _ in spans:
        start, end = shifted(open_end), shifted(close_start)
        inner = plain[start:end]
        start += len(inner) - len(inner.lstrip())
        end -= len(inner) - len(inner.rstrip())
        if start >= end:
            raise DataError(f"{where} has an empty entity between markers: got {text[:80]!r}.")
        entities.append([start, end])
    check_no_overlap(entities[0], entities[1], where)
    return {"text": plain, "head": entities[0], "tail": entities[1]}


def check_no_overlap(head: list[int], tail: list[int], where: str) -> None:
    if head[0] < tail[1] and tail[0] < head[1]:
        raise DataError(
            f"{where} has overlapping head and tail entities: got spans {head} and {tail}. "
            "Relation examples need two separate entities."
        )


def parse_token_spans(record: dict, where: str) -> dict:
    """Plain text and character spans from `tokens` with `head`/`tail` token spans."""
    tokens = record["tokens"]
    if not isinstance(tokens, list) or not all(isinstance(t, str) for t in tokens):
        raise DataError(f"{where}: 'tokens' must be a list of strings: got {tokens!r:.80}.")
    starts, position = [], 0
    for token in tokens:
        starts.append(position)
        position += len(token) + 1
    text = " ".join(tokens)
    result: dict = {"text": text}
    for name in ("head", "tail"):
        span = record.get(name)
        if not isinstance(span, dict) or "start" not in span or "end" not in span:
            raise DataError(
                f'{where} lacks {name} {{"start": i, "end": j}}: got {span!r}. Give token '
                "indices, end exclusive."
            )
        start, end = span["start"], span["end"]
        if not (
            isinstance(start, int) and isinstance(end, int) and 0 <= start < end <= len(tokens)
        ):
            raise DataError(
                f"{where} has a {name} span out of range: got start {start!r}, end {end!r} for "
                f"{len(tokens)} tokens. Use 0 <= start < end <= number of tokens (end exclusive)."
            )
        result[name] = [starts[start], starts[end - 1] + len(tokens[end - 1])]
        result[f"{name}_type"] = str(span.get("type") or "")
    check_no_overlap(result["head"], result["tail"], where)
    return result


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


def typed(marker: str, entity_type: str) -> str:
    """<e1> with type PER becomes <e1:PER>."""
    if marker[-1] in ">]":
        return f"{marker[:-1]}:{entity_type}{marker[-1]}"
    return f"{marker}:{entity_type}"


DEFAULT_MARKERS = ",".join(SEMEVAL_MARKERS)
# Special tokens of BERT and RoBERTa tokenizers: an entity marker must not be one of them.
RESERVED_MARKERS = ("[CLS]", "[SEP]", "[PAD]", "[UNK]", "[MASK]", "<s>", "</s>", "<pad>", "<unk>")


@dataclass
class ReOptions(TaskOptions):
    """Options of --task re."""

    entity_markers: str = field(
        default=DEFAULT_MARKERS,
        metadata={
            "help": "Head start, head end, tail start, tail end markers, comma separated; they "
            "mark entities in `text` inputs and are inserted for `tokens`+`head`/`tail` inputs. "
            'ChemProt style: "<<,>>,[[,]]".'
        },
    )
    typed_markers: bool = field(
        default=False,
        metadata={"help": "Put the entity type in the markers, e.g. <e1:PER> (needs head.type)."},
    )
    negative_label: str | None = field(
        default=None,
        metadata={
            "help": "The label meaning 'no relation' (e.g. Other, no_relation), left out of the "
            "micro and macro scores. Default: none (the RE demo: no_relation); evaluate: the "
            "trained model's."
        },
    )

    def markers(self) -> list[str]:
        return [marker.strip() for marker in self.entity_markers.split(",")]

    def problems(self) -> list[str]:
        found = []
        markers = self.markers()
        if len(markers) != 4 or not all(markers) or len(set(markers)) != 4:
            found.append(
                f"--entity_markers must be 4 different, non-empty strings separated by commas: "
                f'got {self.entity_markers!r}. E.g. "<e1>,</e1>,<e2>,</e2>".'
            )
        elif reserved := [marker for marker in markers if marker in RESERVED_MARKERS]:
            found.append(
                f"--entity_markers cannot be special tokens of a tokenizer: got {reserved[0]!r}. "
                'Use markers of their own, e.g. "<e1>,</e1>,<e2>,</e2>".'
            )
        negative = self.negative_label
        if negative is not None and not negative.strip():
            found.append(
                f"--negative_label is empty: got {negative!r}. Name the 'no relation' label "
                "(e.g. Other), or leave the option out."
            )
        return found


class ReTask(Task):
    """Sentence-level relation classification between two marked entities."""

    name = "re"
    label_key = "label"
    auto_model_class_name = "AutoModelForSequenceClassification"
    pipeline_tag = "text-classification"
    options_class = ReOptions
    data_formats = ("auto", "jsonl", "semeval2010")

    def __init__(
        self,
        markers: list[str] | None = None,
        typed_markers: bool = False,
        negative_label: str | None = None,
        entity_types: list[str] | None = None,
    ):
        self.markers = markers or list(SEMEVAL_MARKERS)
        self.typed_markers = typed_markers
        self.negative_label = negative_label
        self.entity_types = entity_types or []
        self.dropped: dict[str, int] = {}

    @classmethod
    def from_options(cls, options: ReOptions) -> ReTask:
        return cls(options.markers(), options.typed_markers, options.negative_label)

    @classmethod
    def from_settings(cls, settings: dict, model_dir: str) -> ReTask:
        markers = settings["entity_markers"]
        if not (isinstance(markers, list) and len(markers) == 4):
            raise KeyError("entity_markers")
        return cls(
            [str(marker) for marker in markers],
            bool(settings.get("typed_markers", False)),
            settings.get("negative_label"),
            list(settings.get("entity_types") or []),
        )

    def settings(self) -> dict:
        return {
            "task": self.name,
            "entity_markers": self.markers,
            "typed_markers": self.typed_markers,
            "entity_types": self.entity_types,
            "negative_label": self.negative_label,
        }

    def resolved_options(self) -> dict[str, Any]:
        return {"negative_label": self.negative_label}  # the demo's is no_relation

    def usage_code(self, model_path: str) -> str:
        """The text-classification pipeline on a text marked as the model was trained: this
        run's markers (typed with the training data's types where they are typed)."""
        types = self.entity_types or [""]
        example = {"text": "Tom works for Acme .", "head": [0, 3], "tail": [14, 18]}
        example.update(head_type=types[0], tail_type=types[-1])
        head_open, head_close, tail_open, tail_close = self.markers
        return (
            "from transformers import pipeline\n\n"
            f'relation = pipeline("text-classification", model={quoted(model_path)})\n'
            f"# The head entity between {head_open} and {head_close}, the tail between "
            f"{tail_open} and {tail_close}, as in training:\n"
            f"print(relation({quoted(self.marked_text(example))}))\n"
        )

    def words(self, dataset: Dataset) -> list[list[str]]:
        """The whitespace-split words of each text, for building a tokenizer vocabulary."""
        return [text.split() for text in dataset["text"]]

    def example_labels(self, dataset: Dataset) -> list[list[str]]:
        return [[label] for label in dataset["label"]]

    def find_entity_types(self, dataset: Dataset) -> None:
        """Remember the training data's entity types, for typed markers."""
        self.entity_types = sorted((set(dataset["head_type"]) | set(dataset["tail_type"])) - {""})

    def learn_from_training_data(self, train: Dataset) -> None:
        self.find_entity_types(train)

    def read_examples(self, path: str, what: str, data_format: str, labelled: bool) -> list[dict]:
        if data_format == "conll":
            raise DataError(
                f"{what}: --data_format conll is for --task ner. Use jsonl or "
                "semeval2010 for relation extraction."
            )
        if sniff_format(path, data_format) == "semeval2010":
            examples = read_semeval(path, what, labelled)
        else:
            examples = read_re_jsonl(path, what, self.markers, labelled)
        if self.typed_markers:
            for example in examples:
                if not example["head_type"] or not example["tail_type"]:
                    raise DataError(
                        f"{what} line {example['line']} has no entity types, which "
                        "--typed_markers needs: give head.type and tail.type, or drop "
                        "--typed_markers."
                    )
        return examples

    def read_hub(self, name: str, config_name: str | None, split: str) -> Dataset:
        raise ConfigError(
            "--dataset_name is supported for --task ner only: give --train_file and "
            "--validation_file for relation extraction."
        )

    def check_label_options(self, labels: list[str]) -> None:
        negative = self.negative_label
        if negative is not None and negative not in labels:
            raise ConfigError(
                f"--negative_label is not among the labels: got {negative!r}, labels {labels}. "
                "Give one of them (e.g. Other or no_relation), or leave it out."
            )

    def prepare_model(self, model: Any, tokenizer: PreTrainedTokenizerBase) -> None:
        """Keep the entity markers whole (special tokens), each with an embedding."""
        from accel_trainer.models import add_marker_tokens

        add_marker_tokens(tokenizer, model, self.marker_tokens())

    def new_tokens(self) -> list[str]:
        return self.marker_tokens()

    def marker_tokens(self) -> list[str]:
        """Every marker string the tokenizer must keep whole (typed ones per entity type)."""
        tokens = list(self.markers)
        for entity_type in self.entity_types if self.typed_markers else []:
            tokens += [typed(marker, entity_type) for marker in self.markers]
        return tokens

    def marked_text(self, example: dict) -> str:
        """The text with markers around head and tail, as the model reads it."""
        head_open, head_close, tail_open, tail_close = self.markers
        if self.typed_markers and example["head_type"] in self.entity_types:
            head_open, head_close = (typed(m, example["head_type"]) for m in self.markers[:2])
        if self.typed_markers and example["tail_type"] in self.entity_types:
            tail_open, tail_close = (typed(m, example["tail_type"]) for m in self.markers[2:])
        text = example["text"]
        inserts = [
            (example["head"][0], f"{head_open} "),
            (example["head"][1], f" {head_close}"),
            (example["tail"][0], f"{tail_open} "),
            (example["tail"][1], f" {tail_close}"),
        ]
        # Right to left; where a closing and an opening marker meet, the opening one goes in
        # first, so that the closing one ends up before it.
        inserts.sort(key=lambda item: (item[0], item[1].endswith(" ")), reverse=True)
        for position, marker in inserts:
            text = text[:position] + marker + text[position:]
        return text

    def tokenize(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        label2id: dict[str, int] | None,
        max_seq_length: int,
        for_training: bool,
        map_options: dict | None = None,
    ) -> Dataset:
        """Marked text cut to a window around both entities. Examples whose entities lie too far
        apart for max_seq_length are dropped and counted (kept, without input, for prediction)."""
        prefix, suffix = special_affixes(tokenizer)
        size = max_seq_length - len(prefix) - len(suffix)
        marker_ids = set(tokenizer.convert_tokens_to_ids(self.marker_tokens()))

        def encode(batch: dict, indices: list[int]) -> dict:
            examples = [
                dict(zip(batch, values, strict=True))
                for values in zip(*batch.values(), strict=True)
            ]
            encoded = tokenizer([self.marked_text(e) for e in examples], add_special_tokens=False)
            rows: dict = {"input_ids": [], "attention_mask": [], "example_id": [], "label": []}
            for example, ids, example_id in zip(
                examples, encoded["input_ids"], indices, strict=True
            ):
                positions = [p for p, token_id in enumerate(ids) if token_id in marker_ids]
                window = positions and window_around(
                    positions[0], positions[-1] + 1, len(ids), size
                )
                if not window:
                    continue
                content = ids[window[0] : window[1]]
                rows["input_ids"].append(prefix + content + suffix)
                rows["attention_mask"].append([1] * (len(content) + len(prefix) + len(suffix)))
                rows["example_id"].append(example_id)
                rows["label"].append(label2id[example["label"]] if label2id else -100)
            return rows

        encoded = dataset.map(
            encode,
            batched=True,
            with_indices=True,
            remove_columns=dataset.column_names,
            **(map_options or {}),
        )
        split = "train" if for_training else "eval"
        self.dropped[split] = len(dataset) - len(encoded)
        if label2id is None:
            encoded = encoded.remove_columns("label")
        return encoded

    def length_report(self, max_seq_length: int, num_train: int, eval_raw: Dataset | None) -> dict:
        """Examples whose entities lie too far apart for max_seq_length are dropped."""
        num_eval = len(eval_raw) if eval_raw is not None else 0
        train, evaluation = self.dropped.get("train", 0), self.dropped.get("eval", 0)
        stats = {"train_dropped_examples": train, "eval_dropped_examples": evaluation}
        too_far = (
            f"their entities lie too far apart for --max_seq_length {max_seq_length}; raise it "
            "to keep them."
        )
        messages = {
            "train_dropped_examples": f"{train} of {num_train} training examples were dropped: "
            f"{too_far}",
            "eval_dropped_examples": f"{evaluation} of {num_eval} eval examples were dropped and "
            f"are not scored: {too_far}",
        }
        log_length_report(stats, messages)
        return stats

    def write_predictions(
        self,
        raw: Dataset,
        rows: dict,
        id2label: dict[int, str],
        handle: TextIO,
        source: PredictionInput,
    ) -> None:
        """One JSON line per input example: the input record (SemEval: id and text) plus
        `predicted_label` and `probability`; null for examples that do not fit max_seq_length."""
        predicted = example_predictions(rows, id2label)
        for example_id, line in enumerate(raw["line"]):
            example = raw[example_id]
            record = (
                json.loads(example["record"])
                if example.get("record")
                else {
                    **({"id": example["id"]} if example.get("id") is not None else {}),
                    "line": line,
                    "text": self.marked_text(example),
                }
            )
            label, probability = predicted.get(example_id, (None, None))
            record["predicted_label"] = label
            record["probability"] = probability
            if label is None:
                record["error"] = (
                    f"the entities lie too far apart for --max_seq_length {source.max_seq_length}"
                )
            handle.write(json_line(record))

    def demo_files(self, folder: str) -> tuple[str, str]:
        train, dev = RE_DEMO_FILES
        return os.path.join(folder, train), os.path.join(folder, dev)

    def demo_corpus(self) -> tuple[str, str]:
        from accel_trainer.tasks.demo import re_demo_texts

        return re_demo_texts()

    def demo_defaults(self) -> None:
        """The demo corpus's pairs without a relation are labelled no_relation."""
        if self.negative_label is None:
            self.negative_label = DEMO_NEGATIVE_LABEL

    def compute_metrics(
        self,
        predictions: list[np.ndarray],
        labels: list[np.ndarray],
        id2label: dict[int, str],
        example_ids: list | None = None,
    ) -> dict[str, float]:
        """Micro P/R/F1 and macro F1 over the positive labels (all but --negative_label), and
        accuracy over all, by scikit-learn."""
        from sklearn.metrics import accuracy_score, f1_score, precision_recall_fscore_support

        gold = [int(label) for label in labels]
        predicted = [int(label) for label in predictions]
        positive = sorted(i for i, label in id2label.items() if label != self.negative_label)
        precision, recall, f1, _ = precision_recall_fscore_support(
            gold, predicted, labels=positive, average="micro", zero_division=0
        )
        macro_f1 = f1_score(gold, predicted, labels=positive, average="macro", zero_division=0)
        return {
            "precision": float(precision),
            "recall": float(recall),
            "f1": float(f1),
            "macro_f1": float(macro_f1),
            "accuracy": float(accuracy_score(gold, predicted)),
        }

    def metric_names(self, labels: list[str]) -> list[str]:
        """Every metric compute_metrics returns, without the eval_ prefix (the same for any
        label list)."""
        return list(RE_METRICS)
