"""NER model inputs: sentences tokenised into sub-tokens with one label each, truncated for
training and cut into overlapping windows for evaluation and prediction."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

from accel_trainer.tasks.base import IGNORE_INDEX
from accel_trainer.tasks.ner.tags import to_inside
from accel_trainer.tasks.windows import sliding_windows, special_affixes, window_owners

if TYPE_CHECKING:
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


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


def is_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer pre-tokenizes bytes (GPT-2/RoBERTa style BPE)."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    return "ByteLevel" in json.dumps(backend.get("pre_tokenizer"))


def encode_truncated(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label2id: dict[str, int],
    max_seq_length: int,
    label_all_tokens: bool,
    map_options: dict | None = None,
) -> tuple[Dataset, int]:
    """Training rows: one truncated sequence per sentence, and how many sentences were cut."""

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
            encoded["labels"].append(align_labels(word_ids, tags, label2id, label_all_tokens))
            last_word = max((w for w in word_ids if w is not None), default=-1)
            encoded["truncated"].append(last_word < len(tags) - 1)
        return encoded

    tokenized = dataset.map(
        encode, batched=True, remove_columns=dataset.column_names, **(map_options or {})
    )
    return tokenized.remove_columns("truncated"), sum(tokenized["truncated"])


def encode_windows(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    label2id: dict[str, int] | None = None,
    map_options: dict | None = None,
) -> tuple[Dataset, int]:
    """Rows of at most max_seq_length sub-tokens, overlapping by half. Each word belongs to
    the one window where its first sub-token sees the most context: `word_index` holds the
    word's position there (-100 elsewhere), and `labels` its gold tag when label2id is given.
    `example_id` is the sentence's index in `dataset`. Also returns how many sentences took
    more than one window."""
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
    long_sentences = len(
        set(e for e, long in zip(encoded["example_id"], encoded["long"], strict=True) if long)
    )
    return encoded.remove_columns("long"), long_sentences
