"""NER data from the Hugging Face hub (--dataset_name): tokens and ner_tags, as strings."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accel_trainer.errors import DataError
from accel_trainer.tasks.ner.formats import document_id, number_documents
from accel_trainer.tasks.ner.tags import check_tag

if TYPE_CHECKING:
    from datasets import Dataset


def read_hub(
    name: str, config_name: str | None, split: str, tag_scheme: str, file_order: bool = False
) -> Dataset:
    """One split of a `datasets` dataset with tokens and (class-label or string) ner_tags, and
    each sentence's `document`: from a `document_id` column, or from -DOCSTART- rows."""
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
    numbers = number_documents(document_ids(dataset, what), file_order)
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
            check_tag(tag, tag_scheme, f"{what} row {index + 1}")
        return {
            "tokens": example["tokens"],
            "ner_tags": tags,
            "line": index + 1,
            "document": numbers[index],
        }

    # Explicit string features: otherwise map casts the names back to class-label ids.
    string_tags = Features(
        {
            "tokens": Sequence(Value("string")),
            "ner_tags": Sequence(Value("string")),
            "line": Value("int64"),
            "document": Value("int64"),
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


def document_ids(dataset: Dataset, what: str) -> list:
    """Each row's document id: its `document_id` column, else how many -DOCSTART- rows come
    before it (None everywhere when there are none)."""
    if "document_id" in dataset.column_names:
        return [
            document_id({"document_id": value}, f"{what} row {index + 1}")
            for index, value in enumerate(dataset["document_id"])
        ]
    starts = [tokens == ["-DOCSTART-"] for tokens in dataset["tokens"]]
    if not any(starts):
        return [None] * len(starts)
    ids, count = [], 0
    for start in starts:
        count += start
        ids.append(count)
    return ids
