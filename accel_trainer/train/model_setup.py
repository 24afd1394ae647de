"""The model made ready for training before Accelerate prepares it: LoRA on a caller's model,
gradient checkpointing, the batch layout the model allows, torch.compile, and the sharding
fitted to it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accelerate import Accelerator

from accel_trainer.errors import ConfigError
from accel_trainer.lora import apply_lora, is_peft_model, save_trainable_weights_only
from accel_trainer.runtime import fit_sharding_to_model
from accel_trainer.train.batching import choose_layout

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig
    from accel_trainer.tasks.base import Task


def ready_model(model, tokenizer, task: Task, config: TrainConfig, accelerator: Accelerator):
    """The model to prepare, its batch layout, and why that layout."""
    if config.peft.uses_lora and not is_peft_model(model):  # a model of the caller's
        model = apply_lora(model, tokenizer, task.new_tokens(), config.peft)
    if is_peft_model(model):
        save_trainable_weights_only(accelerator)
    if config.compute.gradient_checkpointing:
        enable_gradient_checkpointing(model)
    layout, layout_reason = choose_layout(
        config.batching, task.token_level_labels, model, tokenizer,
        accelerator.device.type,
    )  # fmt: skip
    if config.compute.torch_compile:
        # In place (Module.compile), not wrapped: checkpoints and saved weights keep their
        # names, so a run can resume with or without compiling.
        model.compile()
    fit_sharding_to_model(accelerator, model, config)
    return model, layout, layout_reason


def enable_gradient_checkpointing(model) -> None:
    """Activations recomputed in backward (non-reentrant: works under DDP's no_sync)."""
    if not getattr(model, "supports_gradient_checkpointing", False):
        raise ConfigError(
            f"--gradient_checkpointing is not supported by {type(model).__name__}. Drop the "
            "option, or use a model whose layers transformers can checkpoint (BERT, RoBERTa, ...)."
        )
    non_reentrant = {"use_reentrant": False}
    if hasattr(model, "activation_checkpointing_enable"):  # transformers >= 5.x's name
        model.activation_checkpointing_enable(activation_checkpointing_kwargs=non_reentrant)
    else:
        model.gradient_checkpointing_enable(gradient_checkpointing_kwargs=non_reentrant)
