"""The training components; AccelerateTrainer (loop.py) is the loop over them, and
accel_trainer.api gives it from_files. Names are imported on first use, so that an option module
here (e.g. batching_options.py) is light to import."""

from __future__ import annotations

from accel_trainer import lazy_names

PUBLIC = {
    "Observer": "accel_trainer.train.hooks",
    "TrainPlan": "accel_trainer.train.optim",
}
__all__ = sorted(PUBLIC)

__getattr__ = lazy_names(__name__, PUBLIC)
