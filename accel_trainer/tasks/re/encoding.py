"""Relation model inputs: the entity markers (typed ones too) placed around head and tail, and the
marked text cut to a window around both entities."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

from accel_trainer.tasks.windows import special_affixes, window_around

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


def typed(marker: str, entity_type: str) -> str:
    """<e1> with type PER becomes <e1:PER>."""
    if marker[-1] in ">]":
        return f"{marker[:-1]}:{entity_type}{marker[-1]}"
    return f"{marker}:{entity_type}"


def marker_tokens(markers: list[str], typed_markers: bool, entity_types: list[str]) -> list[str]:
    """Every marker string the tokenizer must keep whole (typed ones per entity type)."""
    tokens = list(markers)
    for entity_type in entity_types if typed_markers else []:
        tokens += [typed(marker, entity_type) for marker in markers]
    return tokens


def marked_text(
    example: dict, markers: list[str], typed_markers: bool, entity_types: list[str]
) -> str:
    """The text with markers around head and tail, as the model reads it."""
    head_open, head_close, tail_open, tail_close = markers
    if typed_markers and example["head_type"] in entity_types:
        head_open, head_close = (typed(m, example["head_type"]) for m in markers[:2])
    if typed_markers and example["tail_type"] in entity_types:
        tail_open, tail_close = (typed(m, example["tail_type"]) for m in markers[2:])
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


def encode_pairs(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label2id: dict[str, int] | None,
    max_seq_length: int,
    marker_tokens: list[str],
    marked_text: Callable[[dict], str],
    map_options: dict | None = None,
) -> Dataset:
    """Marked text (`marked_text` of each example) cut to a window around both entities.
    Examples whose entities lie too far apart for max_seq_length have no row."""
    prefix, suffix = special_affixes(tokenizer)
    size = max_seq_length - len(prefix) - len(suffix)
    marker_ids = set(tokenizer.convert_tokens_to_ids(marker_tokens))

    def encode(batch: dict, indices: list[int]) -> dict:
        examples = [
            dict(zip(batch, values, strict=True)) for values in zip(*batch.values(), strict=True)
        ]
        encoded = tokenizer([marked_text(e) for e in examples], add_special_tokens=False)
        rows: dict = {"input_ids": [], "attention_mask": [], "example_id": [], "label": []}
        for example, ids, example_id in zip(examples, encoded["input_ids"], indices, strict=True):
            positions = [p for p, token_id in enumerate(ids) if token_id in marker_ids]
            window = positions and window_around(positions[0], positions[-1] + 1, len(ids), size)
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
    return encoded
