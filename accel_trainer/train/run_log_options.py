"""The logging options (TrainConfig.logging), read by run_log.py: how often training logs, and
to which tracker."""

from __future__ import annotations

import importlib.util
from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import OPTIONAL_TRACKERS, REPORT_TO, opt, positive_problems
from accel_trainer.config.options import OptionGroup


@dataclass
class LoggingOptions(OptionGroup):
    """How often training logs, and to which tracker."""

    title: ClassVar[str] = "logging"

    logging_steps: int = field(
        default=10,
        metadata=opt("Log loss and learning rate every N optimizer steps.", on_resume="free"),
    )
    report_to: str = field(
        default="none",
        metadata=opt(
            "Tracker for the log records, through Accelerate, on the main process: all = every "
            "installed one.",
            choices=list(REPORT_TO),
            on_resume="free",
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems() + positive_problems(self, ("logging_steps",))
        if self.report_to in OPTIONAL_TRACKERS and importlib.util.find_spec(self.report_to) is None:
            found.append(
                f"--report_to {self.report_to} needs the {self.report_to} package, which is not "
                f"installed: pip install {self.report_to}, or use tensorboard."
            )
        return found
