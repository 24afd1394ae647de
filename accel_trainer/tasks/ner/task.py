"""The NER task: token classification with BIO/IOBES tags, scored by seqeval. Thin: reading,
encoding, metrics and prediction output live in the modules beside it."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TextIO

from accel_trainer.errors import DataError
from accel_trainer.tasks.base import (
    IGNORE_INDEX,
    MetaCollator,
    PredictionInput,
    Task,
    TaskOptions,
    log_length_report,
)
from accel_trainer.tasks.files import check_readable, utf8_problem
from accel_trainer.tasks.ner import encoding, formats, metrics, prediction
from accel_trainer.tasks.ner.hub import read_hub
from accel_trainer.tasks.ner.tags import TAG_SCHEMES
from accel_trainer.tasks.text import WORD_SPLITS, learned_word_split

logger = logging.getLogger("accel_trainer")

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase


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
    document_context: int = field(
        default=0,
        metadata={
            "help": "Read each sentence with up to N sub-tokens of the neighbouring sentences of "
            "its document on each side (FLERT's is 64), within --max_seq_length; context is "
            "never labelled or scored. Off (0) by default: on NCBI-disease abstracts it lowered "
            "dev F1 (docs/data.md). Saved with the model: evaluate and predict read context the "
            "same way."
        },
    )
    documents: str = field(
        default="marked",
        metadata={
            "help": "Which sentences are neighbours: marked (by -DOCSTART- lines or document_id; "
            "a file without them is one sentence per document) or file_order (a file's "
            "sentences are one document up to the next -DOCSTART-).",
            "choices": ["marked", "file_order"],
        },
    )

    def problems(self) -> list[str]:
        if self.document_context < 0:
            return [
                f"--document_context is negative: got {self.document_context}. Give 0 (no "
                "context) or a number of sub-tokens, e.g. 64."
            ]
        return []


def explain_context(train: Dataset, context: int) -> None:
    """Say where context could be used and is not, or is asked for and has nothing to read."""
    documents = list(train["document"])
    count = len(set(documents))
    if count < len(documents) and not context:
        logger.info(
            "the training data marks documents (%d sentences in %d document%s); "
            "--document_context 64 reads each sentence with its neighbours (FLERT), off by "
            "default since it did not help on NCBI-disease (docs/data.md).",
            len(documents), count, "" if count == 1 else "s",
        )  # fmt: skip
    elif count == len(documents) and context:
        logger.warning(
            "--document_context %d: the training data marks no document of two sentences or "
            "more (by -DOCSTART- lines or document_id), so no sentence has neighbours to read. "
            "If consecutive sentences are neighbours, pass --documents file_order.",
            context,
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

    def __init__(
        self,
        label_all_tokens: bool = False,
        tag_scheme: str = "bio",
        word_split: str = "",
        document_context: int = 0,
        documents: str = "marked",
    ):
        self.label_all_tokens = label_all_tokens
        self.tag_scheme = tag_scheme
        self.document_context = document_context
        self.documents = documents
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
        context = settings.get("document_context", 0)  # older models: none
        if not isinstance(context, int) or isinstance(context, bool) or context < 0:
            raise KeyError("document_context")
        documents = settings.get("documents", "marked")
        if documents not in ("marked", "file_order"):
            raise KeyError("documents")
        return cls(
            tag_scheme=scheme, word_split=word_split, document_context=context, documents=documents
        )

    def settings(self) -> dict:
        return {
            "task": self.name,
            "tag_scheme": self.tag_scheme,
            "word_split": self.word_split,
            "document_context": self.document_context,
            "documents": self.documents,
        }

    def learn_from_training_data(self, train: Dataset) -> None:
        self.word_split = learned_word_split(train["tokens"])
        explain_context(train, self.document_context)

    def tokenization_settings(self) -> dict:
        return {**self.settings(), "label_all_tokens": self.label_all_tokens}

    def words(self, dataset: Dataset) -> list[list[str]]:
        """The pre-split words of each example, for building a tokenizer vocabulary."""
        return dataset["tokens"]

    def example_labels(self, dataset: Dataset) -> list[list[str]]:
        return dataset["ner_tags"]

    def read_examples(self, path: str, what: str, data_format: str, labelled: bool) -> list[dict]:
        file_format = formats.resolve_format(path, data_format)
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
            sentences = formats.read_jsonl(path, what, self.tag_scheme, labelled)
        else:
            sentences = formats.read_conll(path, what, self.tag_scheme, labelled)
        ids = [sentence.pop("document_id") for sentence in sentences]
        formats.warn_of_scattered_document(ids, [sentence["line"] for sentence in sentences], what)
        numbers = formats.number_documents(ids, self.documents == "file_order")
        for sentence, number in zip(sentences, numbers, strict=True):
            sentence["document"] = number
        return sentences

    def read_for_prediction(self, source: PredictionInput) -> Dataset:
        """Tokenised sentences (CoNLL, JSON lines of tokens) or raw text documents (plain text,
        JSON lines of `text`), split into words the way the training words were split."""
        path, what = source.input_file, f"--input_file {source.input_file}"
        check_readable(path, "--input_file")
        try:
            kind = self.input_kind = self.prediction_input(source)
        except UnicodeDecodeError:
            raise utf8_problem(path, what) from None
        if kind == "conll" or kind == "jsonl":
            return self.read(path, "--input_file", kind, labelled=False)
        return prediction.read_text_documents(source, kind, self.word_split)

    def prediction_input(self, source: PredictionInput) -> str:
        """What --input_file holds: "conll", "jsonl" (tokens), "text" (plain text) or
        "jsonl-text" (JSON lines with a `text` document each)."""
        return formats.input_kind(source)

    def read_hub(self, name: str, config_name: str | None, split: str) -> Dataset:
        """One split of a `datasets` dataset with tokens and (class-label or string) ner_tags."""
        return read_hub(name, config_name, split, self.tag_scheme, self.documents == "file_order")

    def tokenizer_options(self, tokenizer: PreTrainedTokenizerBase) -> dict:
        """Byte-level tokenizers must encode pre-split words as if preceded by a space, as
        inside a sentence."""
        return {"add_prefix_space": True} if encoding.is_byte_level(tokenizer) else {}

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
        context = self.document_context
        if not for_training:
            encoded, self.long_sentences = encoding.encode_windows(
                dataset, tokenizer, max_seq_length, label2id, map_options, context
            )
            return encoded
        tokenized, self.truncated["train"] = encoding.encode_truncated(
            dataset, tokenizer, label2id, max_seq_length, self.label_all_tokens, map_options,
            context,
        )  # fmt: skip
        return tokenized

    def encode_for_prediction(
        self,
        dataset: Dataset,
        tokenizer: PreTrainedTokenizerBase,
        max_seq_length: int,
        map_options: dict | None = None,
    ) -> Dataset:
        encoded, self.long_sentences = encoding.encode_windows(
            dataset, tokenizer, max_seq_length, None, map_options, self.document_context
        )
        return encoded

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
        return {**stats, "document_context": self.document_context}

    def write_predictions(
        self,
        raw: Dataset,
        rows: dict,
        id2label: dict[int, str],
        handle: TextIO,
        source: PredictionInput,
    ) -> None:
        """By --output_format (auto: CoNLL for CoNLL, JSON lines of tags for JSON lines of
        tokens, spans for raw text); see prediction.write_predictions."""
        prediction.write_predictions(raw, rows, id2label, handle, source, self.input_kind)

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
        return metrics.compute_metrics(predictions, labels, id2label, example_ids, self.tag_scheme)

    def metric_names(self, labels: list[str]) -> list[str]:
        """Every metric compute_metrics returns for these labels, without the eval_ prefix."""
        return metrics.metric_names(labels, self.tag_scheme)
