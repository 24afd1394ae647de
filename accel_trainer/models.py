"""Models and tokenizers: from the hub or a folder, or the offline `tiny-bert`."""

from __future__ import annotations

import importlib
import json
import os
from collections import Counter
from collections.abc import Iterable

from accel_trainer.errors import ConfigError

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]


def check_model_source(name_or_path: str, saved_by_us: bool = False) -> None:
    """A local-looking path (any name, when `saved_by_us`) must exist and hold a model config,
    before any data is read."""
    looks_local = name_or_path.startswith((".", "/", "~")) or os.path.exists(name_or_path)
    if not looks_local and not saved_by_us:
        return
    if not os.path.isdir(name_or_path):
        raise ConfigError(
            f"--model_name_or_path does not exist: got {name_or_path!r}. Give a model folder "
            "or a hub name."
        )
    if not os.path.isfile(os.path.join(name_or_path, "config.json")):
        raise ConfigError(
            f"--model_name_or_path has no config.json: got {name_or_path!r}. Give the folder "
            "that save_pretrained wrote (e.g. a training run's --output_dir)."
        )


def saved_config(model_dir: str) -> tuple[list[str], dict | None]:
    """The label list (in id order) and the accel_trainer task settings of a saved model."""
    with open(os.path.join(model_dir, "config.json"), encoding="utf-8") as handle:
        config = json.load(handle)
    id2label = config.get("id2label") or {}
    labels = [id2label[key] for key in sorted(id2label, key=int)]
    if not labels:
        raise ConfigError(
            f"--model_name_or_path has no id2label in config.json: got {model_dir!r}. Give a "
            "folder saved by accel-trainer train."
        )
    return labels, config.get("accel_trainer")


def add_marker_tokens(tokenizer, model, markers: list[str]) -> None:
    """Keep entity markers whole (special tokens) and give each an embedding."""
    added = tokenizer.add_tokens(markers, special_tokens=True)
    if added:
        model.resize_token_embeddings(len(tokenizer))


def wordpiece_vocab(sentences: Iterable[list[str]], max_words: int = 8000) -> dict[str, int]:
    """Special tokens, every character (word-initial and ##continuation), then the most frequent
    lower-cased words. Built by counting, not by tokenizers' WordPieceTrainer, whose merges break
    ties differently in every process: two ranks would get different token ids."""
    counts = Counter(word.lower() for words in sentences for word in words)
    characters = sorted({char for word in counts for char in word})
    words = sorted(counts, key=lambda word: (-counts[word], word))[:max_words]
    tokens = SPECIAL_TOKENS + characters + [f"##{char}" for char in characters] + words
    return {token: index for index, token in enumerate(dict.fromkeys(tokens))}


def build_wordpiece_tokenizer(
    sentences: Iterable[list[str]], max_words: int = 8000, model_max_length: int = 512
):
    """A lower-casing BERT WordPiece tokenizer whose vocabulary comes from pre-split sentences;
    the same sentences give the same tokenizer in every process and every run."""
    from tokenizers import Tokenizer, decoders, models, normalizers, pre_tokenizers, processors
    from transformers import BertTokenizerFast

    vocab = wordpiece_vocab(sentences, max_words)
    backend = Tokenizer(models.WordPiece(vocab, unk_token="[UNK]", max_input_chars_per_word=100))
    backend.normalizer = normalizers.BertNormalizer(lowercase=True)
    backend.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    backend.decoder = decoders.WordPiece()
    backend.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", vocab["[CLS]"]), ("[SEP]", vocab["[SEP]"])],
    )
    return BertTokenizerFast(
        tokenizer_object=backend, do_lower_case=True, model_max_length=model_max_length
    )


def build_tiny_bert(
    auto_model_class_name: str, vocab_size: int, labels: list[str], max_seq_length: int
):
    """A small randomly initialised BERT with a classification head for `labels`."""
    from transformers import BertConfig

    config = BertConfig(
        vocab_size=vocab_size,
        hidden_size=128,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=256,
        max_position_embeddings=max(512, max_seq_length),
        **label_maps(labels),
    )
    return auto_model_class(auto_model_class_name).from_config(config)


def load_pretrained(
    auto_model_class_name: str, name_or_path: str, labels: list[str], task_name: str = "ner"
):
    """Model and fast tokenizer from the hub or a folder, with a head sized for `labels`."""
    import torch
    from transformers import AutoTokenizer

    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path)
        if task_name == "ner" and is_byte_level(tokenizer):
            # Pre-split words must be encoded as if preceded by a space, as inside a sentence.
            tokenizer = AutoTokenizer.from_pretrained(name_or_path, add_prefix_space=True)
        # float32 master weights whatever the checkpoint's dtype (transformers 5 would keep a
        # half-precision checkpoint in half precision); --mixed_precision casts the compute.
        model = auto_model_class(auto_model_class_name).from_pretrained(
            name_or_path, ignore_mismatched_sizes=True, dtype=torch.float32, **label_maps(labels)
        )
    except OSError as error:
        message = " ".join(str(error).split())
        raise ConfigError(
            f"--model_name_or_path could not be loaded: got {name_or_path!r} ({message}). "
            "Give a local model folder, or a hub name where the hub is reachable."
        ) from None
    if not tokenizer.is_fast:
        raise ConfigError(
            f"--model_name_or_path has no fast tokenizer: got {name_or_path!r}. Word alignment "
            "needs one (a tokenizer.json)."
        )
    return model, tokenizer


def check_sequence_length(max_seq_length: int, model, tokenizer) -> None:
    """Refuse a --max_seq_length longer than the model's position embeddings."""
    limits = [getattr(model.config, "max_position_embeddings", None)]
    if tokenizer.model_max_length < 1_000_000:  # tokenizers without a limit say 1e30
        limits.append(tokenizer.model_max_length)
    limit = min((value for value in limits if value), default=None)
    if limit is not None and max_seq_length > limit:
        raise ConfigError(
            f"--max_seq_length is longer than the model supports: got {max_seq_length}, the "
            f"model takes at most {limit} tokens. Use --max_seq_length {limit} or less; long "
            "NER sentences are evaluated and predicted in sliding windows anyway."
        )


def is_byte_level(tokenizer) -> bool:
    """Whether a fast tokenizer pre-tokenizes bytes (GPT-2/RoBERTa style BPE)."""
    backend = json.loads(tokenizer.backend_tokenizer.to_str())
    return "ByteLevel" in json.dumps(backend.get("pre_tokenizer"))


def label_maps(labels: list[str]) -> dict:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def auto_model_class(name: str):
    return getattr(importlib.import_module("transformers"), name)
