"""Observer hooks: what tests and users attach to watch a run (steps, logs, evaluations,
checkpoints). Observers only observe: they are told what happened and change no control flow."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from tqdm import tqdm

if TYPE_CHECKING:
    from accel_trainer.train.loop import AccelerateTrainer
    from accel_trainer.train.step import StepOutcome


class Observer:
    """Subclass and override the hooks you need; every hook runs on every process."""

    def on_train_begin(self, trainer: AccelerateTrainer) -> None:
        """After resuming (or starting fresh), before the first step of this run."""

    def on_step_begin(self, trainer: AccelerateTrainer, micro_batches: list[dict]) -> None:
        """Before an optimizer step, with this process's micro-batches of it;
        trainer.state.step and trainer.state.micro_step are the counts before it."""

    def on_step_end(self, trainer: AccelerateTrainer, outcome: StepOutcome) -> None:
        """After an optimizer step (applied or skipped) and its log record."""

    def on_log(self, trainer: AccelerateTrainer, record: dict) -> None:
        """After a record was added to the run log."""

    def on_evaluate(self, trainer: AccelerateTrainer, metrics: dict) -> None:
        """After an evaluation during training."""

    def on_checkpoint(self, trainer: AccelerateTrainer, path: str) -> None:
        """After checkpoint-<step> was committed."""

    def on_train_end(self, trainer: AccelerateTrainer, results: dict) -> None:
        """After the final model was saved."""


class Observers:
    """Calls a hook on every attached observer, in order."""

    def __init__(self, observers=()):
        self.attached: list[Observer] = list(observers)

    def notify(self, hook: str, trainer: AccelerateTrainer, *args) -> None:
        if not self.attached:
            return
        # The progress bar steps aside while observers run, so what they print gets lines of
        # its own instead of being glued to the bar.
        with tqdm.external_write_mode():
            for observer in self.attached:
                getattr(observer, hook)(trainer, *args)
            sys.stdout.flush()  # a pipe buffers: written now, before the bar comes back
