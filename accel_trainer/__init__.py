"""accel_trainer: fine-tune transformers for information extraction on Accelerate."""

from __future__ import annotations

__version__ = "0.1.0"
__all__ = ["AccelerateTrainer", "EvalConfig", "Task", "TrainConfig", "register_task"]


def __getattr__(name: str):
    # Heavy imports (torch, transformers) only when the trainer is asked for.
    if name == "AccelerateTrainer":
        from accel_trainer.train import AccelerateTrainer

        return AccelerateTrainer
    if name in ("TrainConfig", "EvalConfig"):
        from accel_trainer import config

        return getattr(config, name)
    if name in ("Task", "register_task"):
        from accel_trainer import tasks

        return getattr(tasks, name)
    raise AttributeError(f"module 'accel_trainer' has no attribute {name!r}")
