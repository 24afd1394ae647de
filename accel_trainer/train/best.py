"""The best evaluation so far (--metric_for_best_model), early stopping, and putting the best
model back at the end (--load_best_model_at_end); its progress lives in TrainState."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from accelerate import Accelerator
from accelerate.logging import get_logger

from accel_trainer.errors import ConfigError, InputError
from accel_trainer.lora import LOAD_ERRORS, load_training_state
from accel_trainer.models import one_line
from accel_trainer.storage.manifest import checkpoint_name, read_manifest

if TYPE_CHECKING:
    from accel_trainer.train.state import TrainState

logger = get_logger(__name__)


class BestModel:
    """Watches one eval metric; the counts it keeps are the state's, so they survive resumes."""

    def __init__(self, metric: str | None, patience: int, load_at_end: bool, output_dir: str):
        self.metric = metric
        self.patience = patience
        self.load_at_end = load_at_end
        self.output_dir = output_dir

    def track(self, state: TrainState, metrics: dict) -> None:
        """Keep the best value of the metric, and count evaluations without a better one."""
        if self.metric is None:
            return
        if self.metric not in metrics:
            raise ConfigError(
                f"--metric_for_best_model is not an eval metric of this task: got "
                f"{self.metric!r}, metrics {sorted(metrics)}."
            )
        value, best = metrics[self.metric], state.best_metric
        lower_is_better = self.metric.endswith("loss")
        improved = best is None or (value < best if lower_is_better else value > best)
        if improved:
            state.best_metric, state.best_step = value, state.step
            state.evaluations_without_improvement = 0
        else:
            state.evaluations_without_improvement += 1

    def stopped_early(self, state: TrainState) -> bool:
        """Early stopping's patience ran out."""
        return bool(self.patience) and state.evaluations_without_improvement >= self.patience

    def must_checkpoint(self, state: TrainState) -> bool:
        """The best model so far must be on disk to be loaded at the end."""
        return self.load_at_end and state.best_step == state.step

    def checkpoint_path(self, state: TrainState) -> str:
        return os.path.join(self.output_dir, checkpoint_name(state.best_step))

    def results(self, state: TrainState) -> dict:
        if self.metric is None:
            return {}
        return {
            "best_metric": state.best_metric,
            "best_step": state.best_step,
            "stopped_early": self.stopped_early(state),
        }

    def load(self, accelerator: Accelerator, model, state: TrainState, log_history, evaluate, last):
        """Put the weights of the best evaluation back into the model; return its metrics
        (from the log, else `evaluate()`); `last`: the metrics of the model as it is."""
        if state.best_step < 0:
            logger.warning("--load_best_model_at_end: no evaluation ran; keeping the last model")
            return last
        if state.best_step == state.step:
            return last
        path = self.checkpoint_path(state)
        if read_manifest(path, verify_checksums=True) is None:
            raise InputError(
                f"--load_best_model_at_end: the best checkpoint {path} (step {state.best_step}) "
                "is missing, torn or altered. The last committed checkpoint is intact; resume "
                "from it without --load_best_model_at_end to save the last model."
            )
        # Loads optimizer, scheduler and RNG too: harmless, training is over.
        try:
            load_training_state(accelerator, path, model)
        except LOAD_ERRORS as error:
            raise InputError(
                f"--load_best_model_at_end: the best checkpoint {path} (step {state.best_step}) "
                f"does not fit this model ({one_line(error)}). The last committed checkpoint "
                "is intact; resume from it without --load_best_model_at_end to save the last "
                "model."
            ) from None
        logger.info(
            "loaded the best model (%s %s at step %d) from %s",
            self.metric,
            state.best_metric,
            state.best_step,
            path,
        )
        records = [r for r in log_history if r["step"] == state.best_step and self.metric in r]
        if not records:
            return evaluate()
        return {k: v for k, v in records[-1].items() if k.startswith("eval_")}
