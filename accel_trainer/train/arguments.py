"""What a caller gives the trainer, checked before any work: the config, task and observers
(their kinds), the model, tokenizer and task of the constructor, and an Accelerator of the
caller's own (settings that would change what the trainer computes)."""

from __future__ import annotations

from accelerate import Accelerator

from accel_trainer.errors import ConfigError
from accel_trainer.lora import is_peft_model
from accel_trainer.train.hooks import Observer


def check_arguments(config, task, observers) -> None:
    """Refuse arguments of the wrong kind before any work, naming the argument (task None:
    the one the config names)."""
    from accel_trainer.config import TrainConfig
    from accel_trainer.tasks.base import Task

    if not isinstance(config, TrainConfig):
        raise ConfigError(
            f"config is not a TrainConfig: got {type(config).__name__}. Build one with "
            "TrainConfig.from_options(...)."
        )
    if task is not None and not isinstance(task, Task):
        raise ConfigError(
            f"task is not a Task instance: got {task!r}. Pass an instance, e.g. NerTask()."
        )
    wrong = [observer for observer in observers if not isinstance(observer, Observer)]
    if wrong:
        raise ConfigError(
            f"observers must be accel_trainer.Observer instances: got {wrong[0]!r}. Subclass "
            "Observer and override the hooks you need."
        )


def check_parts(model, tokenizer, task) -> None:
    """Refuse a missing or wrong model, tokenizer or task given to the constructor."""
    from transformers import PreTrainedModel, PreTrainedTokenizerBase

    from accel_trainer.tasks.base import Task

    build = "or let AccelerateTrainer.from_files(config) build all three"
    for name, value, kind, example in (
        ("task", task, Task, "NerTask()"),
        ("model", model, PreTrainedModel, "AutoModelForTokenClassification.from_pretrained(...)"),
        ("tokenizer", tokenizer, PreTrainedTokenizerBase, "AutoTokenizer.from_pretrained(...)"),
    ):
        if not isinstance(value, kind) and not (name == "model" and is_peft_model(value)):
            raise ConfigError(
                f"{name} is not a {kind.__name__}: got {type(value).__name__}. Pass one, e.g. "
                f"{example}, {build}."
            )


def check_accelerator(accelerator: Accelerator) -> None:
    """Refuse an Accelerator whose settings would change what the trainer computes."""
    problems = []
    if accelerator.gradient_accumulation_steps != 1:
        problems.append(
            f"it accumulates gradients itself (gradient_accumulation_steps "
            f"{accelerator.gradient_accumulation_steps}), which would rescale the loss"
        )
    if accelerator.step_scheduler_with_optimizer:
        problems.append(
            "it steps the scheduler once per process (step_scheduler_with_optimizer=True), "
            "decaying the learning rate that many times too fast"
        )
    if not accelerator.dataloader_config.use_seedable_sampler:
        problems.append("its data order is not seeded (use_seedable_sampler=False)")
    if problems:
        raise ConfigError(
            f"the Accelerator given does not fit the trainer: {'; '.join(problems)}. Build it "
            "with accel_trainer.runtime.training_accelerator(config), and give "
            "--gradient_accumulation_steps to the trainer."
        )
