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


def sub_tokens(tokenizer, sentences: list[list[str]]):
    """The sentences' sub-tokens without special tokens (a BatchEncoding, with word_ids)."""
    return tokenizer(
        replace_invisible_words(tokenizer, sentences),
        is_split_into_words=True,
        add_special_tokens=False,
        verbose=False,
    )


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


def loses_words(word_ids: list[int | None], tags: list[str]) -> bool:
    """Whether truncation left the sentence's last words out of its sub-tokens."""
    last_word = max((w for w in word_ids if w is not None), default=-1)
    return last_word < len(tags) - 1


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
    context: int = 0,
) -> tuple[Dataset, int]:
    """Training rows: one truncated sequence per sentence, with up to `context` sub-tokens of
    its document's neighbouring sentences on each side (labelled -100), and how many sentences
    were cut."""
    if context:
        return encode_in_context(
            dataset, tokenizer, label2id, max_seq_length, label_all_tokens, map_options, context
        )

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
            encoded["truncated"].append(loses_words(word_ids, tags))
        return encoded

    tokenized = dataset.map(
        encode, batched=True, remove_columns=dataset.column_names, **(map_options or {})
    )
    return tokenized.remove_columns("truncated"), sum(tokenized["truncated"])


def encode_in_context(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    label2id: dict[str, int],
    max_seq_length: int,
    label_all_tokens: bool,
    map_options: dict | None,
    context: int,
) -> tuple[Dataset, int]:
    """encode_truncated's rows with document context: [CLS] before sentence after [SEP]."""
    prefix, suffix = special_affixes(tokenizer)
    size = max_seq_length - len(prefix) - len(suffix)
    neighbours = NeighbourContext(dataset, tokenizer, min(context, size))

    def encode(batch: dict, indices: list[int]) -> dict:
        rows: dict = {"input_ids": [], "attention_mask": [], "labels": [], "truncated": []}
        for i, example_id in enumerate(indices):  # tokenized once, by NeighbourContext
            ids = neighbours.ids[example_id][:size]
            word_ids = neighbours.word_ids[example_id][:size]
            tags = batch["ner_tags"][i]
            before, after = neighbours.fitted(example_id, size - len(ids))
            ignored = [IGNORE_INDEX] * (len(prefix) + len(before))
            labels = align_labels(word_ids, tags, label2id, label_all_tokens)
            rows["input_ids"].append(prefix + before + ids + after + suffix)
            rows["labels"].append(ignored + labels + [IGNORE_INDEX] * (len(after) + len(suffix)))
            rows["attention_mask"].append([1] * len(rows["labels"][-1]))
            rows["truncated"].append(loses_words(word_ids, tags))
        return rows

    tokenized = rows_by_index(dataset, encode, map_options)
    return tokenized.remove_columns("truncated"), sum(tokenized["truncated"])


def rows_by_index(dataset: Dataset, encode, map_options: dict | None) -> Dataset:
    """`encode(batch, indices)`'s rows in place of the dataset's columns."""
    return dataset.map(
        encode,
        batched=True,
        with_indices=True,
        remove_columns=dataset.column_names,
        **(map_options or {}),
    )


class NeighbourContext:
    """The sub-tokens around each sentence of a dataset within its document (the `document`
    column; without it, every sentence is alone): up to `size` on each side."""

    def __init__(self, dataset: Dataset, tokenizer: PreTrainedTokenizerBase, size: int):
        encoded = sub_tokens(tokenizer, list(dataset["tokens"]))
        self.ids = encoded["input_ids"]
        self.word_ids = [encoded.word_ids(index) for index in range(len(self.ids))]
        has_documents = "document" in dataset.column_names
        self.documents = list(dataset["document"] if has_documents else range(len(self.ids)))
        self.size = size

    def before(self, index: int) -> list[int]:
        """The last `size` sub-tokens of the sentences before `index` in its document."""
        found: list[int] = []
        other = index - 1
        while other >= 0 and self.documents[other] == self.documents[index]:
            found = self.ids[other] + found
            if len(found) >= self.size:
                return found[len(found) - self.size :]
            other -= 1
        return found

    def after(self, index: int) -> list[int]:
        """The first `size` sub-tokens of the sentences after `index` in its document."""
        found: list[int] = []
        other = index + 1
        while other < len(self.ids) and self.documents[other] == self.documents[index]:
            found += self.ids[other]
            if len(found) >= self.size:
                return found[: self.size]
            other += 1
        return found

    def fitted(self, index: int, room: int) -> tuple[list[int], list[int]]:
        """The context before and after sentence `index` in at most `room` positions: halves,
        and what one side cannot use goes to the other."""
        before, after = self.before(index), self.after(index)
        if len(before) + len(after) <= room:
            return before, after
        keep_before = max(room // 2, room - len(after))
        keep_before = min(keep_before, len(before))
        keep_after = room - keep_before
        return before[len(before) - keep_before :], after[:keep_after]


def encode_windows(
    dataset: Dataset,
    tokenizer: PreTrainedTokenizerBase,
    max_seq_length: int,
    label2id: dict[str, int] | None = None,
    map_options: dict | None = None,
    context: int = 0,
) -> tuple[Dataset, int]:
    """Rows of at most max_seq_length sub-tokens, overlapping by half. Each word belongs to
    the one window where its first sub-token sees the most context: `word_index` holds the
    word's position there (-100 elsewhere), and `labels` its gold tag when label2id is given.
    `example_id` is the sentence's index in `dataset`. A sentence that fits one window gets up
    to `context` sub-tokens of its document's neighbouring sentences on each side (-100 in
    `word_index`). Also returns how many sentences took more than one window."""
    prefix, suffix = special_affixes(tokenizer)
    size = max_seq_length - len(prefix) - len(suffix)
    before, after = [IGNORE_INDEX] * len(prefix), [IGNORE_INDEX] * len(suffix)
    neighbours = NeighbourContext(dataset, tokenizer, min(context, size)) if context else None

    def encode(batch: dict, indices: list[int]) -> dict:
        if neighbours is not None:  # tokenized once, by NeighbourContext
            all_ids = [neighbours.ids[example_id] for example_id in indices]
            all_word_ids = [neighbours.word_ids[example_id] for example_id in indices]
        else:
            encoded = sub_tokens(tokenizer, batch["tokens"])
            all_ids = encoded["input_ids"]
            all_word_ids = [encoded.word_ids(i) for i in range(len(all_ids))]
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
            ids, word_ids = all_ids[i], all_word_ids[i]
            windows = sliding_windows(len(ids), size)
            owners = window_owners(windows)
            first_sub_token = [
                word is not None and (position == 0 or word_ids[position - 1] != word)
                for position, word in enumerate(word_ids)
            ]
            left, right = [], []
            if neighbours is not None and len(windows) == 1:
                left, right = neighbours.fitted(example_id, size - len(ids))
            for number, (start, end) in enumerate(windows):
                words = [
                    word_ids[p] if first_sub_token[p] and owners[p] == number else IGNORE_INDEX
                    for p in range(start, end)
                ]
                unscored = [IGNORE_INDEX] * len(left), [IGNORE_INDEX] * len(right)
                word_index = before + unscored[0] + words + unscored[1] + after
                rows["input_ids"].append(prefix + left + ids[start:end] + right + suffix)
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

    encoded = rows_by_index(dataset, encode, map_options)
    long_sentences = len(
        set(e for e, long in zip(encoded["example_id"], encoded["long"], strict=True) if long)
    )
    return encoded.remove_columns("long"), long_sentences
