"""The training components; AccelerateTrainer (loop.py) is the loop over them."""

from accel_trainer.train.hooks import Observer
from accel_trainer.train.loop import AccelerateTrainer, TrainPlan

__all__ = ["AccelerateTrainer", "Observer", "TrainPlan"]
