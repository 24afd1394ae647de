"""The training components; AccelerateTrainer (loop.py) is the loop over them. Names are imported
on first use, so that an option module here (e.g. batching_options.py) is light to import."""

from __future__ import annotations

from accel_trainer import lazy_names

PUBLIC = {
    "AccelerateTrainer": "accel_trainer.train.loop",
    "Observer": "accel_trainer.train.hooks",
    "TrainPlan": "accel_trainer.train.loop",
}
__all__ = sorted(PUBLIC)

__getattr__ = lazy_names(__name__, PUBLIC)
