"""The optimisation options (TrainConfig.optim), read by optim.py and the loop: AdamW, the
learning-rate schedule and how long training runs."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import MAX_COUNT, SCHEDULERS, opt, upper_bound_problems
from accel_trainer.config.options import OptionGroup


@dataclass
class OptimOptions(OptionGroup):
    """The optimizer, its schedule, and how long training runs."""

    title: ClassVar[str] = "optimisation"

    learning_rate: float | None = field(
        default=None,
        metadata=opt(
            "Peak learning rate. Default 5e-5 for pretrained models, 1e-3 for "
            "tiny-bert, which trains from scratch."
        ),
    )
    weight_decay: float = field(
        default=0.01, metadata=opt("AdamW weight decay, not applied to biases and norm weights.")
    )
    adam_beta1: float = field(default=0.9, metadata=opt("AdamW beta1."))
    adam_beta2: float = field(default=0.999, metadata=opt("AdamW beta2."))
    adam_epsilon: float = field(default=1e-8, metadata=opt("AdamW epsilon."))
    lr_scheduler_type: str = field(
        default="linear",
        metadata=opt("Learning-rate schedule over optimizer steps.", choices=list(SCHEDULERS)),
    )
    warmup_ratio: float = field(
        default=0.0, metadata=opt("Warmup as a fraction of all optimizer steps.")
    )
    num_warmup_steps: int = field(
        default=0, metadata=opt("Warmup in optimizer steps (instead of --warmup_ratio).")
    )
    max_grad_norm: float = field(
        default=1.0, metadata=opt("Clip the gradient norm to this; 0 disables clipping.")
    )
    num_train_epochs: float = field(default=3.0, metadata=opt("Passes over the training data."))
    max_train_steps: int = field(
        default=0, metadata=opt("Optimizer steps to run; overrides epochs when > 0.")
    )
    max_nonfinite_steps: int = field(
        default=5,
        metadata=opt(
            "Stop (exit 3) when more than this many optimizer steps in a row have a NaN or "
            "inf loss or gradient; each such step is skipped on every process.",
            on_resume="free",
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        found += self.number_problems()
        found += self.length_problems()
        found += self.warmup_problems()
        if self.weight_decay < 0:
            found.append(f"--weight_decay cannot be negative: got {self.weight_decay}.")
        if self.max_grad_norm < 0:
            found.append(
                f"--max_grad_norm cannot be negative: got {self.max_grad_norm}. Use 0 to disable."
            )
        if self.max_nonfinite_steps < 0:
            found.append(
                f"--max_nonfinite_steps cannot be negative: got {self.max_nonfinite_steps}."
            )
        return found

    def number_problems(self) -> list[str]:
        """Learning rate and AdamW settings that are not finite or out of range."""
        found = []
        real_numbers = {
            "learning_rate": self.learning_rate or 0.0,
            "num_train_epochs": self.num_train_epochs,
            "weight_decay": self.weight_decay,
            "max_grad_norm": self.max_grad_norm,
            "warmup_ratio": self.warmup_ratio,
            "adam_beta1": self.adam_beta1,
            "adam_beta2": self.adam_beta2,
            "adam_epsilon": self.adam_epsilon,
        }
        for name, value in real_numbers.items():
            if not math.isfinite(value):
                found.append(f"--{name} must be a finite number: got {value}.")
        for name in ("adam_beta1", "adam_beta2"):
            value = getattr(self, name)
            if math.isfinite(value) and not 0 <= value < 1:
                found.append(f"--{name} must be in [0, 1): got {value}. E.g. 0.9 or 0.999.")
        if self.adam_epsilon < 0:
            found.append(f"--adam_epsilon cannot be negative: got {self.adam_epsilon}. E.g. 1e-8.")
        if self.learning_rate is not None and not self.learning_rate > 0:
            found.append(
                f"--learning_rate must be positive: got {self.learning_rate}. Use e.g. 5e-5."
            )
        return found

    def length_problems(self) -> list[str]:
        """How long to train: epochs and steps."""
        found = upper_bound_problems(self, {"max_train_steps": MAX_COUNT})
        if self.num_train_epochs < 0 or self.max_train_steps < 0:
            found.append(
                "--num_train_epochs and --max_train_steps cannot be negative: got "
                f"{self.num_train_epochs} and {self.max_train_steps}. Use positive values."
            )
        elif self.num_train_epochs == 0 and self.max_train_steps == 0:
            found.append(
                "--num_train_epochs and --max_train_steps are both 0: nothing to train. "
                "Set one of them to a positive value."
            )
        elif self.num_train_epochs > MAX_COUNT:
            found.append(
                f"--num_train_epochs must be at most {MAX_COUNT}: got {self.num_train_epochs}. "
                "Use a smaller value, or --max_train_steps."
            )
        return found

    def warmup_problems(self) -> list[str]:
        found = []
        if not 0 <= self.warmup_ratio < 1:
            found.append(f"--warmup_ratio must be in [0, 1): got {self.warmup_ratio}.")
        if self.num_warmup_steps < 0:
            found.append(f"--num_warmup_steps cannot be negative: got {self.num_warmup_steps}.")
        if self.lr_scheduler_type == "constant" and (self.warmup_ratio or self.num_warmup_steps):
            found.append(
                "--lr_scheduler_type constant has no warmup: got a warmup too. Use "
                "constant_with_warmup."
            )
        if self.warmup_ratio > 0 and self.num_warmup_steps > 0:
            found.append(
                f"--warmup_ratio and --num_warmup_steps are both set: got {self.warmup_ratio} "
                f"and {self.num_warmup_steps}. Give only one."
            )
        return found
