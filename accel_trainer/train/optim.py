"""How long training runs (the plan, in optimizer steps), AdamW with its parameter groups, and
the learning-rate schedule, counted in optimizer steps."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig

NORM_TYPES: tuple[type[nn.Module], ...] = (
    nn.LayerNorm,
    nn.GroupNorm,
    nn.LocalResponseNorm,
    nn.modules.batchnorm._BatchNorm,
    nn.modules.instancenorm._InstanceNorm,
    *((nn.RMSNorm,) if hasattr(nn, "RMSNorm") else ()),  # torch >= 2.4
)


def is_norm_layer(module: nn.Module) -> bool:
    """Norm layers by type; architectures with their own classes (LlamaRMSNorm, T5LayerNorm)
    are caught by the class name, since they do not subclass torch's norms."""
    return isinstance(module, NORM_TYPES) or type(module).__name__.endswith("Norm")


def parameter_groups(model: nn.Module, weight_decay: float) -> list[dict]:
    """Two AdamW groups: decay for weights, none for biases and every norm layer's parameters."""
    no_decay_ids = set()
    for module in model.modules():
        for name, parameter in module.named_parameters(recurse=False):
            if is_norm_layer(module) or name == "bias":
                no_decay_ids.add(id(parameter))
    decay, no_decay = [], []
    for parameter in model.parameters():  # deduplicates tied weights
        if parameter.requires_grad:
            (no_decay if id(parameter) in no_decay_ids else decay).append(parameter)
    return [
        {"params": decay, "weight_decay": weight_decay},
        {"params": no_decay, "weight_decay": 0.0},
    ]


def build_optimizer(
    model: nn.Module,
    learning_rate: float,
    weight_decay: float,
    betas: tuple[float, float] = (0.9, 0.999),
    eps: float = 1e-8,
) -> torch.optim.AdamW:
    """AdamW with torch's fused kernel, which updates all parameters in one pass (on CPU, a
    MiniLM step takes 16 ms instead of 86 ms); where this torch has no fused kernel for the
    parameters' device (CPU before torch 2.4), the default implementation, same algorithm."""
    hyperparameters = {"lr": learning_rate, "betas": betas, "eps": eps}
    try:
        return torch.optim.AdamW(
            parameter_groups(model, weight_decay), fused=True, **hyperparameters
        )
    except RuntimeError:  # "`fused=True` requires all the params to be ... of supported devices"
        return torch.optim.AdamW(parameter_groups(model, weight_decay), **hyperparameters)


def warmup_steps(total_steps: int, warmup_ratio: float, num_warmup_steps: int) -> int:
    """Warmup in optimizer steps: given directly, or as a fraction of all optimizer steps."""
    if num_warmup_steps > 0:
        return num_warmup_steps
    return math.ceil(total_steps * warmup_ratio)


def build_scheduler(
    optimizer: torch.optim.Optimizer, name: str, total_steps: int, num_warmup: int
) -> torch.optim.lr_scheduler.LRScheduler:
    """A transformers schedule whose length is the number of optimizer steps."""
    from transformers import get_scheduler

    return get_scheduler(
        name, optimizer, num_warmup_steps=num_warmup, num_training_steps=total_steps
    )


@dataclass
@dataclass
class TrainPlan:
    """How long training runs, in optimizer steps, after sharding and accumulation."""

    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    warmup_steps: int


def plan_training(
    config: TrainConfig, batches_per_epoch: int, accumulation_steps: int
) -> TrainPlan:
    """The plan of a run whose loader yields `batches_per_epoch` micro-batches per epoch."""
    steps_per_epoch = math.ceil(batches_per_epoch / accumulation_steps)
    if config.optim.max_train_steps > 0:
        total_steps = config.optim.max_train_steps
    else:
        total_steps = max(1, math.ceil(config.optim.num_train_epochs * steps_per_epoch))
    num_epochs = math.ceil(total_steps / steps_per_epoch)
    warmup = warmup_steps(total_steps, config.optim.warmup_ratio, config.optim.num_warmup_steps)
    return TrainPlan(steps_per_epoch, total_steps, num_epochs, warmup)


def optimizer_and_scheduler(model: nn.Module, config: TrainConfig, plan: TrainPlan):
    """AdamW over `model` and its learning-rate schedule, as the options and the plan say."""
    optimizer = build_optimizer(
        model,
        config.resolved_learning_rate(),
        config.optim.weight_decay,
        betas=(config.optim.adam_beta1, config.optim.adam_beta2),
        eps=config.optim.adam_epsilon,
    )
    scheduler = build_scheduler(
        optimizer, config.optim.lr_scheduler_type, plan.total_steps, plan.warmup_steps
    )
    return optimizer, scheduler
