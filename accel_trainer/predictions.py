"""Writing `predict` output: per-word tags for NER, a label and its probability for RE."""

from __future__ import annotations

import json
import os

from accel_trainer.tasks.files import json_lines
from accel_trainer.tasks.ner import resolve_format


def write_predictions(task, raw, rows: dict, id2label: dict, config) -> None:
    """Write the predictions of every input example, in input order, atomically."""
    id2label = {int(i): label for i, label in id2label.items()}
    partial = f"{config.output_file}.{os.getpid()}.tmp"
    with open(partial, "w", encoding="utf-8") as handle:
        if task.name == "ner":
            write_ner(task, raw, rows, id2label, config, handle)
        else:
            write_re(task, raw, rows, id2label, config, handle)
    os.replace(partial, config.output_file)


def write_ner(task, raw, rows: dict, id2label: dict, config, handle) -> None:
    """CoNLL in, CoNLL out (token and tag); JSON lines in, the same records with `ner_tags`."""
    tokens = raw["tokens"]
    tags = task.assemble_tags(rows, [len(words) for words in tokens], id2label)
    if resolve_format(config.input_file, config.data_format) == "jsonl":
        originals = input_records(config.input_file)
        for line, words_tags in zip(raw["line"], tags, strict=True):
            record = originals[line]
            record["ner_tags"] = words_tags
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        return
    for words, words_tags in zip(tokens, tags, strict=True):
        handle.writelines(f"{word}\t{tag}\n" for word, tag in zip(words, words_tags, strict=True))
        handle.write("\n")


def write_re(task, raw, rows: dict, id2label: dict, config, handle) -> None:
    """One JSON line per input example: the input record (SemEval: id and text) plus
    `predicted_label` and `probability`; null for examples that do not fit max_seq_length."""
    predicted = {
        int(example_id): (id2label[int(label)], float(confidence))
        for example_id, label, confidence in zip(
            rows.get("example_id", []),
            rows.get("predictions", []),
            rows.get("confidence", []),
            strict=True,
        )
    }
    originals = input_records(config.input_file) if raw_is_jsonl(raw, config) else {}
    for example_id, line in enumerate(raw["line"]):
        record = originals.get(line) or {"line": line, "text": task.marked_text(raw[example_id])}
        label, probability = predicted.get(example_id, (None, None))
        record["predicted_label"] = label
        record["probability"] = probability
        if label is None:
            record["error"] = (
                f"the entities lie too far apart for --max_seq_length {config.max_seq_length}"
            )
        handle.write(json.dumps(record, ensure_ascii=False) + "\n")


def raw_is_jsonl(raw, config) -> bool:
    from accel_trainer.tasks.re import sniff_format

    return sniff_format(config.input_file, config.data_format) == "jsonl"


def input_records(path: str) -> dict[int, dict]:
    """The JSON object on each non-blank line of a JSON lines file, by line number."""
    return {number: record for number, _, record in json_lines(path, "--input_file")}
