"""accel_trainer: fine-tune transformers for information extraction on Accelerate; the public
names are importable from here."""

from __future__ import annotations

__version__ = "0.1.0"
# Public name -> the module that defines it, imported on first use so that `--help` stays fast.
PUBLIC = {
    "AccelerateTrainer": "accel_trainer.api",
    "Observer": "accel_trainer.train",
    "TrainConfig": "accel_trainer.config",
    "EvalConfig": "accel_trainer.config",
    "PredictConfig": "accel_trainer.config",
    "Task": "accel_trainer.tasks",
    "TaskOptions": "accel_trainer.tasks.base",
    "register_task": "accel_trainer.tasks",
}
__all__ = sorted(PUBLIC)


def lazy_names(package: str, public: dict[str, str]):
    """A module `__getattr__` that imports each public name of `package` from its module on
    first use (PEP 562)."""
    import importlib

    def __getattr__(name: str):
        if name in public:
            return getattr(importlib.import_module(public[name]), name)
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    return __getattr__


__getattr__ = lazy_names(__name__, PUBLIC)
