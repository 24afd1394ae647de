"""The evaluation options (TrainConfig.evaluation), read by the loop and best.py: when the model
is evaluated during training, and which evaluation is the best."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import opt
from accel_trainer.config.options import OptionGroup


@dataclass
class EvalOptions(OptionGroup):
    """When the model is evaluated during training, and which evaluation is the best."""

    title: ClassVar[str] = "evaluation"

    eval_steps: int = field(
        default=0, metadata=opt("Also evaluate every N optimizer steps (0: only at epoch ends).")
    )
    metric_for_best_model: str | None = field(
        default=None,
        metadata=opt(
            "Track the best value of this eval metric (e.g. eval_f1; lower is better "
            "for names ending in loss); its checkpoint is never rotated away."
        ),
    )
    early_stopping_patience: int = field(
        default=0,
        metadata=opt(
            "Stop after this many evaluations in a row without a better "
            "--metric_for_best_model (0: never). Survives a resume."
        ),
    )
    load_best_model_at_end: bool = field(
        default=False,
        metadata=opt(
            "Save the model of the best --metric_for_best_model evaluation, not the last one. "
            "Each new best is checkpointed; --save_total_limit bounds how many are kept.",
            on_resume="free",
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        metric = self.metric_for_best_model
        if metric is not None and not metric.startswith("eval_"):
            found.append(
                f"--metric_for_best_model must name an eval metric: got {metric!r}. E.g. eval_f1."
            )
        if self.early_stopping_patience < 0:
            found.append(
                f"--early_stopping_patience cannot be negative: got {self.early_stopping_patience}."
            )
        elif self.early_stopping_patience and metric is None:
            found.append(
                "--early_stopping_patience needs --metric_for_best_model: got none. Name the "
                "metric to watch, e.g. eval_f1."
            )
        if self.load_best_model_at_end and metric is None:
            found.append(
                "--load_best_model_at_end needs --metric_for_best_model: got none. Name the "
                "metric that picks the best model, e.g. eval_f1."
            )
        if self.eval_steps < 0:
            found.append(f"--eval_steps cannot be negative: got {self.eval_steps}.")
        return found
