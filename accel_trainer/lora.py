"""LoRA through the peft library: wrapping a model (adapters on the target modules; the head and
the embeddings of tokens the task added trained in full), counting what trains, the merged copy
the final folder holds, and loading an adapter-only folder back. peft is imported here only,
and only when a run or a saved folder asks for it: the base install does not need it."""

from __future__ import annotations

import copy
import os
import sys
from typing import TYPE_CHECKING, Any

from torch import nn

from accel_trainer.config.groups import PEFT_INSTALL
from accel_trainer.errors import ConfigError
from accel_trainer.models import (
    auto_model_class,
    check_vocabulary,
    label_maps,
    load_tokenizer,
    one_line,
)

if TYPE_CHECKING:
    from accel_trainer.config import PeftOptions
    from accel_trainer.models import TokenizerOptions

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# peft's task types, by the transformers head class's suffix: they pick peft's model class
# (and AutoPeftModelFor... when the adapter is loaded back).
PEFT_TASK_TYPES = {"ForTokenClassification": "TOKEN_CLS", "ForSequenceClassification": "SEQ_CLS"}
# Layer types peft's LoRA adapts; their names are what --lora_target_modules may give.
ADAPTABLE_TYPES = (nn.Linear, nn.Embedding, nn.Conv1d, nn.Conv2d)


def require_peft(what: str):
    """The peft module, or one ConfigError saying how to install it."""
    try:
        import peft
    except ImportError:
        raise ConfigError(
            f"{what} needs the peft package, which is not installed: {PEFT_INSTALL}."
        ) from None
    return peft


def is_peft_model(model) -> bool:
    """Whether `model` is a peft wrapper (without importing peft when nothing did)."""
    peft = sys.modules.get("peft")
    return peft is not None and isinstance(model, peft.PeftModel)


def adaptable_names(model) -> list[str]:
    """The last name part of every layer LoRA can adapt, outside the head: the values
    --lora_target_modules may take."""
    head = head_modules(model)
    names = set()
    for name, module in model.named_modules():
        is_conv1d = type(module).__name__ == "Conv1D"  # GPT-2's transposed linear layers
        if (
            name
            and name.split(".")[0] not in head
            and (isinstance(module, ADAPTABLE_TYPES) or is_conv1d)
        ):
            names.add(name.rsplit(".", 1)[-1])
    return sorted(names)


def head_modules(model) -> list[str]:
    """The modules outside the pretrained base model (transformers' base_model_prefix): the task
    head (and DistilBERT's pre_classifier, DeBERTa's pooler), new, so trained in full."""
    prefix = getattr(model, "base_model_prefix", "")
    children = dict(model.named_children())
    if prefix not in children:
        return []  # no base model inside: peft's task type names the head
    return [
        name
        for name, child in children.items()
        if name != prefix and any(True for _ in child.parameters())
    ]


def target_modules(model, requested: list[str] | None) -> list[str] | str:
    """The modules to adapt: those requested, each checked to name a layer of the model, or
    peft's default for the architecture."""
    model_type = getattr(model.config, "model_type", type(model).__name__)
    available = adaptable_names(model)
    if requested is None:
        from peft.utils import TRANSFORMERS_MODELS_TO_LORA_TARGET_MODULES_MAPPING as DEFAULTS

        if model_type not in DEFAULTS:
            raise ConfigError(
                f"--lora_target_modules has no default for model type {model_type!r}: peft "
                "names none for it. Give the layers to adapt, e.g. --lora_target_modules "
                f"{' '.join(available[:2]) or 'query value'}; this model's layers that take "
                f"adapters are named: {', '.join(available)}."
            )
        return DEFAULTS[model_type]
    unknown = [name for name in requested if name not in available]
    if unknown:
        raise ConfigError(
            f"--lora_target_modules names no layer of this {model_type} model that takes an "
            f"adapter: got {', '.join(map(repr, unknown))}. Its layers (outside the head) are "
            f"named: {', '.join(available)}."
        )
    return list(requested)


def apply_lora(model, tokenizer, new_tokens: list[str], options: PeftOptions):
    """`model` wrapped by peft for LoRA training: adapters on the target modules, the head and
    the embeddings of `new_tokens` (tokens the task added to the tokenizer, whose rows are
    untrained) trained in full, everything else frozen."""
    peft = require_peft("--peft lora")
    token_ids = sorted({tokenizer.convert_tokens_to_ids(token) for token in new_tokens})
    suffix = next((s for s in PEFT_TASK_TYPES if type(model).__name__.endswith(s)), None)
    config = peft.LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=target_modules(model, options.lora_target_modules),
        modules_to_save=head_modules(model) or None,
        trainable_token_indices=token_ids or None,
        task_type=PEFT_TASK_TYPES.get(suffix),
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    except ValueError as error:  # e.g. a target of a layer type LoRA does not support
        raise ConfigError(
            f"--lora_target_modules cannot be adapted: got {options.lora_target_modules} "
            f"({one_line(error)}). Name linear layers, e.g. query value."
        ) from None
    base = model.config.name_or_path
    if base and os.path.isdir(base):  # so that an adapter folder names its base from anywhere
        wrapped.peft_config["default"].base_model_name_or_path = os.path.abspath(base)
    return wrapped


def parameter_counts(model) -> tuple[int, int]:
    """Trainable and all parameters (each shared tensor once)."""
    parameters = list(model.parameters())
    trainable = sum(p.numel() for p in parameters if p.requires_grad)
    return trainable, sum(p.numel() for p in parameters)


def lora_summary(model, saved_as: str | None = None) -> dict:
    """What LoRA trains in a peft model, for the log, all_results.json and config.json."""
    config = model.peft_config["default"]
    children = dict(model.get_base_model().named_children())
    targets = config.target_modules
    tokens = config.trainable_token_indices
    summary = {
        "method": "lora",
        "r": config.r,
        "alpha": config.lora_alpha,
        "dropout": config.lora_dropout,
        "target_modules": [targets] if isinstance(targets, str) else sorted(targets),
        # peft adds its task type's usual head names (classifier, score): those this model has
        "trained_in_full": sorted(set(config.modules_to_save or []) & set(children)),
        "trained_token_ids": sorted(tokens) if isinstance(tokens, list) else tokens,
        "base_model": config.base_model_name_or_path,
    }
    if saved_as is not None:
        summary["saved"] = saved_as
    return summary


def merged_copy(model):
    """A plain transformers model with the adapters merged into its weights (a copy: the
    trained peft model stays as it is), which loads without peft."""
    return copy.deepcopy(model).merge_and_unload()


def is_adapter_folder(model_dir: str) -> bool:
    return os.path.isfile(os.path.join(model_dir, ADAPTER_CONFIG))


def load_adapter_folder(
    auto_model_class_name: str,
    model_dir: str,
    labels: list[str],
    settings: dict,
    tokenizer_options: TokenizerOptions | None = None,
) -> tuple[Any, Any]:
    """A folder saved with --save_adapter_only, for evaluate and predict: the base model it
    names, the adapter loaded onto it strictly (every adapter weight from the folder, every
    other weight from the base) and merged."""
    import torch
    from safetensors.torch import load_file

    what = f"--model_name_or_path {model_dir!r} holds a LoRA adapter only, and loading it"
    peft = require_peft(what)
    config = peft.PeftConfig.from_pretrained(model_dir)
    base_path = config.base_model_name_or_path
    tokenizer = load_tokenizer(model_dir, tokenizer_options)
    model_class = auto_model_class(auto_model_class_name)
    try:
        base, info = model_class.from_pretrained(
            base_path, dtype=torch.float32, output_loading_info=True, **label_maps(labels)
        )
    except Exception as error:  # the base moved, or is a hub name without the hub
        raise ConfigError(
            f"--model_name_or_path names a base model that cannot be loaded: got {model_dir!r}, "
            f"whose adapter was trained on {base_path!r} ({one_line(error)}). Put the base "
            f"model back there, or set base_model_name_or_path in {ADAPTER_CONFIG}."
        ) from None
    head = tuple(f"{name}." for name in config.modules_to_save or [])
    lacking = sorted(key for key in info["missing_keys"] if not key.startswith(head))
    if lacking or info["mismatched_keys"]:
        raise ConfigError(
            f"--model_name_or_path names a base model that is not the one the adapter was "
            f"trained on: got {base_path!r}, which lacks (or has other-sized) "
            f"{', '.join(map(str, [*lacking, *info['mismatched_keys']][:5]))}."
        )
    if base.get_input_embeddings().num_embeddings != len(tokenizer):
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows from the adapter
    wrapped = peft.get_peft_model(base, config)
    result = peft.set_peft_model_state_dict(
        wrapped, load_file(os.path.join(model_dir, ADAPTER_WEIGHTS))
    )
    not_loaded = [key for key in result.missing_keys if is_adapter_key(key)]
    if not_loaded or result.unexpected_keys:
        raise ConfigError(
            f"--model_name_or_path has an adapter that does not fit its {ADAPTER_CONFIG}: got "
            f"{model_dir!r} ({', '.join([*not_loaded, *result.unexpected_keys][:5])} "
            "missing or unused). Give the folder that `accel-trainer train` saved, unchanged."
        )
    model = wrapped.merge_and_unload()
    model.config.accel_trainer = settings
    check_vocabulary(tokenizer, model, model_dir)
    return model, tokenizer


def is_adapter_key(key: str) -> bool:
    """A weight the adapter file must provide: LoRA's, the head's, the trained token rows."""
    return any(part in key for part in ("lora_", "modules_to_save", "trainable_tokens_delta"))
