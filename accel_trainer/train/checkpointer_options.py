"""The checkpointing options (TrainConfig.checkpointing), read by checkpointer.py and resume.py:
when the training state is saved, how many saves are kept, and what a run resumes from."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import blank_problem, is_blank, opt
from accel_trainer.config.options import OptionGroup


@dataclass(frozen=True)
class CheckpointEvery:
    """When to save the training state: every `steps` optimizer steps, each epoch, or never."""

    text: str = "no"
    steps: int | None = field(default=None, init=False)
    epoch: bool = field(default=False, init=False)

    def __post_init__(self):
        # ASCII digits only: str.isdigit() also accepts '²', which int() refuses.
        if self.text.isascii() and self.text.isdigit() and int(self.text) > 0:
            object.__setattr__(self, "steps", int(self.text))
        object.__setattr__(self, "epoch", self.text == "epoch")

    @property
    def never(self) -> bool:
        return self.text == "no"

    def is_valid(self) -> bool:
        return self.steps is not None or self.text in ("no", "epoch")

    def __str__(self) -> str:
        return self.text


@dataclass
class CheckpointOptions(OptionGroup):
    """When the training state is saved, how many saves are kept, and what a run resumes from."""

    title: ClassVar[str] = "checkpointing"

    checkpointing_steps: CheckpointEvery = field(
        default_factory=CheckpointEvery,
        metadata=opt(
            "Save the full training state every N optimizer steps, at each epoch end ('epoch'), "
            "or never ('no'), as OUTPUT_DIR/checkpoint-<step>, committed atomically.",
            text_type=CheckpointEvery,
            on_resume="free",
        ),
    )
    save_total_limit: int = field(
        default=0,
        metadata=opt(
            "Keep at most this many checkpoints (0: all); older ones are deleted "
            "only after a new one is committed.",
            on_resume="free",
        ),
    )
    resume_from_checkpoint: str | None = field(
        default=None,
        metadata=opt(
            "Resume from a checkpoint folder, 'latest' (the newest committed one in "
            "--output_dir), or 'auto' (that, or start fresh when there is none).",
            on_resume="free",
        ),
    )
    allow_topology_change: bool = field(
        default=False,
        metadata=opt(
            "Resume on another number of processes, per-device batch or accumulation, keeping "
            "the global batch: each optimizer step sees the same examples, but the result is "
            "no longer bit-exact.",
            on_resume="free",
        ),
    )

    def __post_init__(self):
        if isinstance(self.checkpointing_steps, str):
            self.checkpointing_steps = CheckpointEvery(self.checkpointing_steps)

    def problems(self) -> list[str]:
        found = super().problems()
        every = self.checkpointing_steps
        if not every.is_valid():
            found.append(
                f"--checkpointing_steps must be a positive number, epoch or no: got {every.text!r}."
            )
        if self.save_total_limit < 0:
            found.append(f"--save_total_limit cannot be negative: got {self.save_total_limit}.")
        if is_blank(self.resume_from_checkpoint):
            found.append(
                blank_problem(
                    "resume_from_checkpoint",
                    self.resume_from_checkpoint,
                    "Give a checkpoint folder, latest or auto, or leave the option out.",
                )
            )
        elif self.resume_from_checkpoint not in (None, "latest", "auto"):
            found += resume_path_problems(self.resume_from_checkpoint)
        return found


def resume_path_problems(path: str) -> list[str]:
    """A --resume_from_checkpoint path that is no checkpoint folder: missing, a file, or a
    run's output folder (which holds checkpoints)."""
    advice = "Give a checkpoint-<step> folder of the run (they are in its --output_dir), or "
    if not os.path.lexists(path):
        if path.lower() in ("latest", "auto"):
            return [f"--resume_from_checkpoint takes {path.lower()} in lower case: got {path!r}."]
        return [f"--resume_from_checkpoint does not exist: got {path!r}. {advice}latest or auto."]
    if not os.path.isdir(path):
        return [f"--resume_from_checkpoint is a file, not a checkpoint folder: got {path!r}. "
                f"{advice}latest or auto."]  # fmt: skip
    if any(name.startswith("checkpoint-") for name in os.listdir(path)):
        return [
            f"--resume_from_checkpoint is a run's output folder, not one of its checkpoints: got "
            f"{path!r}. Pass --output_dir {path} --resume_from_checkpoint auto (or latest), or "
            "one of its checkpoint-<step> folders."
        ]
    return []
