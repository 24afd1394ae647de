"""Models and tokenizers: from the hub or a folder, or the offline `tiny-bert`."""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections import Counter
from collections.abc import Callable, Iterable
from typing import Any

from accel_trainer.errors import ConfigError
from accel_trainer.hub import looks_local
from accel_trainer.storage.hashing import json_digest

SPECIAL_TOKENS = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
# A task's Task.tokenizer_options: keyword arguments to reload a loaded tokenizer with.
TokenizerOptions = Callable[[Any], dict]
# What a folder's tokenizer is saved as, by one tokenizer family or another.
TOKENIZER_FILES = (
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.txt",
    "vocab.json",
    "spiece.model",
    "sentencepiece.bpe.model",
    "tokenizer.model",
)


logger = logging.getLogger(__name__)


def check_model_source(name_or_path: str, saved_by_us: bool = False) -> None:
    """A local-looking path (any name, when `saved_by_us`) must exist and hold a model config,
    before any data is read."""
    if not looks_local(name_or_path) and not saved_by_us:
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
    path = os.path.join(model_dir, "config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            config = json.load(handle)
        id2label = config.get("id2label") or {}
        labels = [id2label[key] for key in sorted(id2label, key=int)]
        if sorted(map(int, id2label)) != list(range(len(labels))):
            raise ValueError(f"id2label ids are {sorted(map(int, id2label))}, not 0 to n-1")
        label2id = config.get("label2id")
        if label2id is not None and label2id != {label: i for i, label in enumerate(labels)}:
            raise ValueError("label2id is not the inverse of id2label")
    except (OSError, ValueError, AttributeError, TypeError) as error:
        raise ConfigError(
            f"--model_name_or_path has a config.json that cannot be read: got {path!r} "
            f"({type(error).__name__}: {error}). Restore the folder from a copy, or train again."
        ) from None
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
    auto_model_class_name: str,
    name_or_path: str,
    labels: list[str],
    tokenizer_options: TokenizerOptions | None = None,
    local_files_only: bool = False,
):
    """Model and fast tokenizer from the hub or a folder, with a head sized for `labels` (a
    new, randomly initialised one where the checkpoint's has other labels): for training.
    `local_files_only`: from the local cache, without asking the hub."""
    import torch

    tokenizer = load_tokenizer(name_or_path, tokenizer_options, local_files_only)
    try:
        # float32 master weights whatever the checkpoint's dtype (transformers 5 would keep a
        # half-precision checkpoint in half precision); --mixed_precision casts the compute.
        model, info = auto_model_class(auto_model_class_name).from_pretrained(
            name_or_path,
            ignore_mismatched_sizes=True,
            dtype=torch.float32,
            local_files_only=local_files_only,
            # transformers does not pass local_files_only on to its adapter lookup
            adapter_kwargs={"local_files_only": True} if local_files_only else None,
            output_loading_info=True,
            **label_maps(labels),
        )
    except Exception as error:  # OSError, safetensors' and torch's errors for damaged files
        raise ConfigError(
            f"--model_name_or_path could not be loaded: got {name_or_path!r} "
            f"({one_line(error)}). {unreachable_advice(local_files_only)}"
        ) from None
    check_vocabulary(tokenizer, model, name_or_path)
    explain_load_report(name_or_path, info)
    return model, tokenizer


def explain_load_report(name_or_path: str, info: dict) -> None:
    """One line on transformers' load report, which lists a fine-tuning run's new head as
    MISSING: what is new (and trained from here) and what of the checkpoint goes unused."""
    mismatched = {key if isinstance(key, str) else key[0] for key in info["mismatched_keys"]}
    new = sorted(set(info["missing_keys"]) | mismatched)
    unused = sorted(info["unexpected_keys"])
    if not new and not unused:
        return
    listed = " and ".join(
        word for word, keys in (("MISSING", info["missing_keys"]), ("MISMATCH", mismatched)) if keys
    )
    logger.info(
        "loaded %s: as expected for fine-tuning, the task's head is new (%s: initialised at "
        "random and trained from here, listed as %s in transformers' load report)%s",
        name_or_path,
        ", ".join(new) or "none",
        listed or "MISSING",
        f"; {len(unused)} weight(s) of the checkpoint this task does not use are left out "
        f"({', '.join(unused[:4])}{', ...' if len(unused) > 4 else ''}: UNEXPECTED)"
        if unused
        else "",
    )


def load_saved_model(
    auto_model_class_name: str, model_dir: str, tokenizer_options: TokenizerOptions | None = None
):
    """A folder saved by `accel-trainer train`, for evaluate and predict: every weight must
    come from the folder (no new head, no size mismatch), and the tokenizer must be the one the
    model was trained with."""
    import torch

    from accel_trainer.storage.commit import final_model_problem

    problem = final_model_problem(model_dir)
    if problem is not None:
        raise ConfigError(f"--model_name_or_path cannot be used: got {model_dir!r}; {problem}.")
    tokenizer = load_tokenizer(model_dir, tokenizer_options)
    model_class = auto_model_class(auto_model_class_name)
    try:
        model, info = model_class.from_pretrained(
            model_dir, dtype=torch.float32, output_loading_info=True
        )
    except Exception as error:  # size mismatches, damaged or missing weight files
        raise ConfigError(
            f"--model_name_or_path could not be loaded: got {model_dir!r} "
            f"({weights_problem(model_class, model_dir, error)}). Give the folder that "
            "`accel-trainer train` saved, unchanged."
        ) from None
    not_loaded = sorted(info["missing_keys"]) + sorted(info["mismatched_keys"])
    if not_loaded:
        raise ConfigError(
            f"--model_name_or_path lacks trained weights: got {model_dir!r}, whose weight file "
            f"has no (or other-sized) {', '.join(map(str, not_loaded[:5]))}. They would be "
            "random: give the folder that `accel-trainer train` saved, unchanged."
        )
    unused = sorted(info["unexpected_keys"])
    if unused:
        raise ConfigError(
            f"--model_name_or_path has trained weights its config.json has no place for: got "
            f"{model_dir!r}, with {', '.join(map(str, unused[:5]))} unused. Its config.json "
            "does not describe these weights: give the folder that `accel-trainer train` saved."
        )
    check_vocabulary(tokenizer, model, model_dir)
    return model, tokenizer


def weights_problem(model_class, model_dir: str, error: Exception) -> str:
    """What a failed load means, naming the tensors whose shapes differ from config.json."""
    from transformers import AutoConfig

    try:
        from safetensors import safe_open

        with safe_open(os.path.join(model_dir, "model.safetensors"), "pt") as weights:
            saved = {key: list(weights.get_slice(key).get_shape()) for key in weights.keys()}  # noqa: SIM118
        expected = model_class.from_config(AutoConfig.from_pretrained(model_dir)).state_dict()
        differ = [
            f"{key} is {saved[key]} in the weights but {list(value.shape)} in config.json"
            for key, value in expected.items()
            if key in saved and saved[key] != list(value.shape)
        ]
    except Exception:  # the weights cannot be read at all: the original error says why
        differ = []
    return "; ".join(differ[:4]) if differ else one_line(error)


def one_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300] or type(error).__name__


def unreachable_advice(local_files_only: bool) -> str:
    if local_files_only:  # the hub did not answer, and the cache lacks some of the model's files
        return (
            "The hub is unreachable and the local cache holds only part of the model: give a "
            "folder written by save_pretrained, or download the model where the hub is reachable."
        )
    return "Give a local model folder, or a hub name where the hub is reachable."


def load_tokenizer(
    name_or_path: str,
    tokenizer_options: TokenizerOptions | None = None,
    local_files_only: bool = False,
):
    """The fast tokenizer of a hub model or a folder; a folder must hold tokenizer files.
    `tokenizer_options(tokenizer)` (the task's) gives keyword arguments to reload it with;
    `local_files_only`: from the local cache, without asking the hub."""
    from transformers import AutoTokenizer

    if os.path.isdir(name_or_path) and not any(
        os.path.isfile(os.path.join(name_or_path, name)) for name in TOKENIZER_FILES
    ):
        raise ConfigError(
            f"--model_name_or_path has no tokenizer: got {name_or_path!r}, which holds none of "
            f"{', '.join(TOKENIZER_FILES)}. Save the tokenizer there too "
            "(tokenizer.save_pretrained), or copy its files from the model it was trained from."
        )
    try:
        tokenizer = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_files_only)
        options = tokenizer_options(tokenizer) if tokenizer_options and tokenizer.is_fast else {}
        if options:
            tokenizer = AutoTokenizer.from_pretrained(
                name_or_path, local_files_only=local_files_only, **options
            )
    except Exception as error:  # OSError, ValueError, JSON errors of damaged files
        raise ConfigError(
            f"--model_name_or_path has a tokenizer that cannot be loaded: got {name_or_path!r} "
            f"({one_line(error)}). {unreachable_advice(local_files_only)}"
        ) from None
    if not tokenizer.is_fast:
        raise ConfigError(
            f"--model_name_or_path has no fast tokenizer: got {name_or_path!r}. Word alignment "
            "needs one (a tokenizer.json)."
        )
    return tokenizer


def check_vocabulary(tokenizer, model, name_or_path: str) -> None:
    """Refuse a tokenizer that does not belong to the model: ids beyond its embeddings, or
    another size than the one it was trained with (recorded in config.json)."""
    rows = model.get_input_embeddings().num_embeddings
    settings = getattr(model.config, "accel_trainer", None)
    settings = settings if isinstance(settings, dict) else {}
    trained_size, trained_vocab = settings.get("tokenizer_size"), settings.get("tokenizer_vocab")
    if len(tokenizer) > rows or trained_size not in (None, len(tokenizer)):
        expected = f"; it was trained with {trained_size}" if trained_size is not None else ""
        problem = f"a tokenizer of {len(tokenizer)} tokens for {rows} embedding rows{expected}"
    elif trained_vocab not in (None, vocabulary_digest(tokenizer)):
        problem = "a tokenizer of the same size whose tokens have other ids than in training"
    else:
        return
    raise ConfigError(
        f"--model_name_or_path has a tokenizer that does not match its model: got "
        f"{name_or_path!r}, {problem}. Put the tokenizer the model was trained with beside it."
    )


def vocabulary_digest(tokenizer) -> str:
    """A short digest of every token and its id: another vocabulary, another digest."""
    vocabulary = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return json_digest(vocabulary, 16)


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


def label_maps(labels: list[str]) -> dict:
    return {
        "num_labels": len(labels),
        "id2label": dict(enumerate(labels)),
        "label2id": {label: i for i, label in enumerate(labels)},
    }


def auto_model_class(name: str):
    return getattr(importlib.import_module("transformers"), name)
