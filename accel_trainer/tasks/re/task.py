"""The relation extraction task: classification of one marked entity pair per example. Thin:
reading, encoding, metrics and prediction output live in the modules beside it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TextIO

from accel_trainer.errors import ConfigError, DataError
from accel_trainer.tasks.base import PredictionInput, Task, TaskOptions, log_length_report
from accel_trainer.tasks.re import encoding, formats, metrics, prediction
from accel_trainer.tasks.re.spans import SEMEVAL_MARKERS

if TYPE_CHECKING:
    import numpy as np
    from datasets import Dataset
    from transformers import PreTrainedTokenizerBase

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
        if formats.sniff_format(path, data_format) == "semeval2010":
            examples = formats.read_semeval(path, what, labelled)
        else:
            examples = formats.read_re_jsonl(path, what, self.markers, labelled)
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
        return encoding.marker_tokens(self.markers, self.typed_markers, self.entity_types)

    def marked_text(self, example: dict) -> str:
        """The text with markers around head and tail, as the model reads it."""
        return encoding.marked_text(example, self.markers, self.typed_markers, self.entity_types)

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
        encoded = encoding.encode_pairs(
            dataset,
            tokenizer,
            label2id,
            max_seq_length,
            self.marker_tokens(),
            self.marked_text,
            map_options,
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
        prediction.write_predictions(raw, rows, id2label, handle, source, self.marked_text)

    def compute_metrics(
        self,
        predictions: list[np.ndarray],
        labels: list[np.ndarray],
        id2label: dict[int, str],
        example_ids: list | None = None,
    ) -> dict[str, float]:
        """Micro P/R/F1 and macro F1 over the positive labels (all but --negative_label), and
        accuracy over all, by scikit-learn."""
        return metrics.compute_metrics(predictions, labels, id2label, self.negative_label)

    def metric_names(self, labels: list[str]) -> list[str]:
        """Every metric compute_metrics returns, without the eval_ prefix; SemEval-2010 Task 8's
        labels add its official score."""
        return metrics.metric_names(labels)
