"""The training components; AccelerateTrainer (loop.py) is the loop over them, and
accel_trainer.api gives it from_files."""

from accel_trainer.train.hooks import Observer
from accel_trainer.train.optim import TrainPlan

__all__ = ["Observer", "TrainPlan"]
