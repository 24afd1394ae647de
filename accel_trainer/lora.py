"""LoRA through the peft library: wrapping a model (adapters on the target modules; the head and
the embeddings of tokens the task added trained in full), counting what trains, the merged copy
the final folder holds, and loading an adapter-only folder back. peft is imported here only,
and only when a run or a saved folder asks for it: the base install does not need it."""

from __future__ import annotations

import copy
import os
import re
import sys
from typing import TYPE_CHECKING, Any

from safetensors import SafetensorError
from torch import nn
from torch.distributed.checkpoint.api import CheckpointException

from accel_trainer.errors import ConfigError
from accel_trainer.lora_options import PEFT_INSTALL, PeftOptions
from accel_trainer.models import (
    auto_model_class,
    check_vocabulary,
    label_maps,
    load_tokenizer,
    one_line,
)
from accel_trainer.storage.hashing import file_digest

if TYPE_CHECKING:
    from accel_trainer.models import TokenizerOptions

ADAPTER_CONFIG = "adapter_config.json"
ADAPTER_WEIGHTS = "adapter_model.safetensors"
# What a base folder computes with: its config and weights (sharded or not), not the
# training_args.bin or other files a folder may also hold.
BASE_FILES = re.compile(r"^(config\.json|(model|pytorch_model)(-\d+-of-\d+)?\.(safetensors|bin))$")
CHECKPOINT_WEIGHTS = "model.safetensors"  # what accelerator.save_state names the model's
# What loading weights raises for a file that is damaged or does not fit the model.
# (Sharded checkpoints' loader raises CheckpointException, which is no Exception.)
LOAD_ERRORS = (
    OSError, ValueError, TypeError, KeyError, RuntimeError, SafetensorError, CheckpointException,
)  # fmt: skip
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


def adaptable_modules(model) -> dict[str, nn.Module]:
    """Every layer LoRA can adapt, outside the head, by its full name."""
    head = head_modules(model)
    return {
        name: module
        for name, module in model.named_modules()
        if name
        and name.split(".")[0] not in head
        # Conv1D: GPT-2's transposed linear layers
        and (isinstance(module, ADAPTABLE_TYPES) or type(module).__name__ == "Conv1D")
    }


def adaptable_names(model) -> list[str]:
    """The last name part of every layer LoRA can adapt: what --lora_target_modules lists."""
    return sorted({name.rsplit(".", 1)[-1] for name in adaptable_modules(model)})


def named_by(name: str, target: str) -> bool:
    """Whether --lora_target_modules' `target` names the layer `name`, by the end of its name
    as peft matches it: query, self.query or attention.output.dense."""
    return name == target or name.endswith("." + target)


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
    modules = adaptable_modules(model)
    unknown = [target for target in requested if not any(named_by(n, target) for n in modules)]
    if unknown:
        raise ConfigError(
            f"--lora_target_modules names no layer of this {model_type} model that takes an "
            f"adapter: got {', '.join(map(repr, unknown))}. Its layers (outside the head) are "
            f"named: {', '.join(available)}."
        )
    return list(requested)


def layer_width(module: nn.Module) -> int:
    """The largest useful LoRA rank for a layer: the smaller of its two dimensions."""
    weight = getattr(module, "weight", None)
    return min(weight.shape[:2]) if weight is not None and weight.dim() >= 2 else 0


def check_rank(model, targets: list[str] | str, rank: int) -> None:
    """Refuse a --lora_r above the width of a layer it adapts: a rank beyond min(in, out)
    only adds parameters (and memory), not what the adapter can express."""
    if isinstance(targets, str):
        return  # a pattern: peft matches it itself
    widths = [
        layer_width(module)
        for name, module in adaptable_modules(model).items()
        if any(named_by(name, target) for target in targets)
    ]
    narrowest = min((width for width in widths if width > 0), default=0)
    if narrowest and rank > narrowest:
        raise ConfigError(
            f"--lora_r is larger than the layers it adapts: got {rank}, and the narrowest of "
            f"{' '.join(targets)} is {narrowest} wide. A rank above a layer's smaller dimension "
            f"adds parameters, not capacity: use at most {narrowest} (8 to 64 is usual)."
        )


def apply_lora(model, tokenizer, new_tokens: list[str], options: PeftOptions):
    """`model` wrapped by peft for LoRA training: adapters on the target modules, the head and
    the embeddings of `new_tokens` (tokens the task added to the tokenizer, whose rows are
    untrained) trained in full, everything else frozen."""
    peft = require_peft("--peft lora")
    token_ids = sorted({tokenizer.convert_tokens_to_ids(token) for token in new_tokens})
    suffix = next((s for s in PEFT_TASK_TYPES if type(model).__name__.endswith(s)), None)
    targets = target_modules(model, options.lora_target_modules)
    check_rank(model, targets, options.lora_r)
    config = peft.LoraConfig(
        r=options.lora_r,
        lora_alpha=options.lora_alpha,
        lora_dropout=options.lora_dropout,
        target_modules=targets,
        modules_to_save=head_modules(model) or None,
        trainable_token_indices=token_ids or None,
        task_type=PEFT_TASK_TYPES.get(suffix),
    )
    try:
        wrapped = peft.get_peft_model(model, config)
    # e.g. a target of a layer type LoRA does not support, or an embedding layer as target
    # where the task's new token rows train (RE markers)
    except (ValueError, TypeError) as error:
        raise ConfigError(
            f"--lora_target_modules cannot be adapted: got "
            f"{' '.join(targets) if isinstance(targets, list) else targets} "
            f"({one_line(error)}). Name linear layers, e.g. query value."
        ) from None
    base = model.config.name_or_path
    if base and os.path.isdir(base):  # so that an adapter folder names its base from anywhere
        wrapped.peft_config["default"].base_model_name_or_path = os.path.abspath(base)
    return wrapped


def parameter_counts(model) -> tuple[int, int]:
    """Trainable and all parameters (each shared tensor once), whole even where ZeRO-3 keeps
    a partition of each in this process."""
    parameters = list(model.parameters())
    trainable = sum(whole_numel(p) for p in parameters if p.requires_grad)
    return trainable, sum(whole_numel(p) for p in parameters)


def whole_numel(parameter) -> int:
    return getattr(parameter, "ds_numel", parameter.numel())  # DeepSpeed ZeRO-3's full size


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


def save_trainable_weights_only(accelerator) -> None:
    """Make the checkpoints of a LoRA run hold the weights that train (adapters, head, token
    rows) and none of the frozen base, which the resumed run loads from --model_name_or_path
    as the first one did: megabytes per checkpoint instead of the whole model. (Sharded runs
    write their shards themselves, frozen ones included: no weights reach this hook.)"""

    def drop_frozen(models, weights, output_dir) -> None:
        if not weights:
            return
        for model, state in zip(models, weights, strict=True):
            # by the names of the model as prepared (DDP's module. prefix) or as unwrapped
            trainable = trainable_names(model) | trainable_names(accelerator.unwrap_model(model))
            for key in [key for key in state if key not in trainable]:
                del state[key]

    accelerator.register_save_state_pre_hook(drop_frozen)


def trainable_names(model) -> set[str]:
    return {name for name, parameter in model.named_parameters() if parameter.requires_grad}


def load_training_state(accelerator, path: str, model) -> None:
    """accelerator.load_state; for a LoRA model (whose checkpoints hold its trainable weights
    only) not strictly, then checked: every trainable weight must come from the checkpoint.
    ValueError when one does not."""
    sharded = not os.path.exists(os.path.join(path, CHECKPOINT_WEIGHTS))  # every weight's shard
    if sharded or not is_peft_model(accelerator.unwrap_model(model)):
        accelerator.load_state(path)
        return
    from safetensors import safe_open

    accelerator.load_state(path, strict=False)
    with safe_open(os.path.join(path, CHECKPOINT_WEIGHTS), "pt") as weights:
        saved = set(weights.keys())
    trainable = trainable_names(accelerator.unwrap_model(model))
    lacking, extra = sorted(trainable - saved), sorted(saved - trainable)
    if lacking:
        raise ValueError(f"it lacks trained weights {', '.join(lacking[:3])}")
    if extra:  # loaded over frozen weights, they would change the base silently
        raise ValueError(f"it holds weights this run does not train: {', '.join(extra[:3])}")


def merged_copy(model, state_dict: dict):
    """A plain transformers model with the adapters merged into its weights, which loads
    without peft: a new, unsharded peft model of the same class and adapter config, given the
    trained model's full `state_dict` (under FSDP its parameters are shards: no deepcopy)."""
    from peft import get_peft_model

    base = model.get_base_model()
    plain_class = next(c for c in type(base).__mro__ if "FSDP" not in c.__name__)
    adapter = model.peft_config[model.active_adapter]
    plain = get_peft_model(plain_class(copy.deepcopy(base.config)), copy.deepcopy(adapter))
    plain.load_state_dict(state_dict)
    return plain.merge_and_unload()


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
    try:
        config = peft.PeftConfig.from_pretrained(model_dir)
    except LOAD_ERRORS as error:
        raise adapter_damaged(model_dir, ADAPTER_CONFIG, error) from None
    base_path = config.base_model_name_or_path
    check_base_unchanged(model_dir, base_path, settings.get("peft", {}).get("base_weights"))
    tokenizer = load_tokenizer(model_dir, tokenizer_options)
    model_class = auto_model_class(auto_model_class_name)
    try:  # the head may differ in size from the base's (another label set): it is in the adapter
        base, info = model_class.from_pretrained(
            base_path,
            dtype=torch.float32,
            output_loading_info=True,
            ignore_mismatched_sizes=True,
            **label_maps(labels),
        )
    except Exception as error:  # the base moved, or is a hub name without the hub
        raise ConfigError(
            f"--model_name_or_path names a base model that cannot be loaded: got {model_dir!r}, "
            f"whose adapter was trained on {base_path!r} ({one_line(error)}). Put the base "
            "model back there, or a link to it (ln -s NEW_PLACE OLD_PLACE)."
        ) from None
    head = tuple(f"{name}." for name in config.modules_to_save or [])
    mismatched = [key[0] if isinstance(key, tuple) else key for key in info["mismatched_keys"]]
    off = sorted(k for k in [*info["missing_keys"], *mismatched] if not k.startswith(head))
    if off:
        raise ConfigError(
            f"--model_name_or_path names a base model that is not the one the adapter was "
            f"trained on: got {base_path!r}, which lacks (or has other-sized) "
            f"{', '.join(map(str, off[:5]))}."
        )
    if base.get_input_embeddings().num_embeddings != len(tokenizer):
        base.resize_token_embeddings(len(tokenizer), mean_resizing=False)  # rows from the adapter
    try:
        wrapped = peft.get_peft_model(base, config)
        weights = load_file(os.path.join(model_dir, ADAPTER_WEIGHTS))
        result = peft.set_peft_model_state_dict(wrapped, weights)
    except LOAD_ERRORS as error:
        raise adapter_damaged(model_dir, ADAPTER_WEIGHTS, error) from None
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


def adapter_damaged(model_dir: str, name: str, error: Exception) -> ConfigError:
    return ConfigError(
        f"--model_name_or_path holds an adapter that cannot be read: got {model_dir!r}, whose "
        f"{name} fails ({one_line(error)}). Give the folder that `accel-trainer train` saved, "
        "unchanged, or train it again."
    )


def base_weights(base: str | None) -> dict[str, str] | None:
    """The sha256 of the files of a base model that shape what it computes (config.json and
    the weights, sharded or not) in its local folder or, for a hub name, its cached snapshot;
    None when there is neither. An adapter, and a LoRA run's identity, record them: LoRA's
    checkpoints and adapter folders hold no base weights, so the base must not change."""
    folder = local_snapshot(base)
    if folder is None:
        return None
    found = {}
    for name in sorted(os.listdir(folder)):
        path = os.path.join(folder, name)
        if not BASE_FILES.match(name) or not os.path.isfile(path):
            continue
        try:
            found[name] = file_digest(path)
        except OSError as error:
            raise ConfigError(
                f"--model_name_or_path has a file that cannot be read: got {path!r} "
                f"({error.strerror}). Check its permissions."
            ) from None
    return found


def local_snapshot(base: str | None) -> str | None:
    """A base model's folder: the path itself, or the hub cache's snapshot of the name."""
    if not base:
        return None
    if os.path.isdir(base):
        return base
    try:
        from huggingface_hub import snapshot_download

        return snapshot_download(base, local_files_only=True)
    except Exception:  # not a hub name, or not in the cache
        return None


def check_base_unchanged(model_dir: str, base_path: str, recorded: dict | None) -> None:
    """Refuse a local base whose weights are not those the adapter was trained on."""
    now = base_weights(base_path)
    if recorded is None or now is None or now == recorded:
        return
    changed = sorted(set(recorded) ^ set(now) | {n for n in recorded if now.get(n) != recorded[n]})
    raise ConfigError(
        f"--model_name_or_path holds an adapter whose base model has changed since training: got "
        f"{model_dir!r}, trained on {base_path!r}, whose {', '.join(changed)} differ now. The "
        "adapter fits only the weights it was trained on: restore that base model, or train the "
        "adapter again."
    )


def is_adapter_key(key: str) -> bool:
    """A weight the adapter file must provide: LoRA's, the head's, the trained token rows."""
    return any(part in key for part in ("lora_", "modules_to_save", "trainable_tokens_delta"))
