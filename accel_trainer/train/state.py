"""The training progress a checkpoint carries (trainer_state.json), and its validation: a
state read back from disk is checked field by field before anything uses it; the RNG streams
a checkpoint carries beside it, captured and set again."""

from __future__ import annotations

import math
import random
from dataclasses import astuple, dataclass, field, fields

import numpy as np
import torch

TOTALS_FIELDS = ("loss_sum", "loss_count", "real_tokens", "padded_tokens")


@dataclass
class Totals:
    """Sums over all processes: the logged loss and its count (labelled positions, or batches
    for --loss_normalization batch), and the real (non-pad) and padded tokens computed."""

    loss_sum: float = 0.0
    loss_count: float = 0.0
    real_tokens: float = 0.0
    padded_tokens: float = 0.0

    def add(self, values: list[float]) -> None:
        """Add sums given in TOTALS_FIELDS order (as one all-reduced tensor holds them)."""
        for name, value in zip(TOTALS_FIELDS, values, strict=True):
            setattr(self, name, getattr(self, name) + value)

    def mean_loss(self) -> float:
        return self.loss_sum / max(self.loss_count, 1)

    def padding_efficiency(self) -> float:
        return round(self.real_tokens / max(self.padded_tokens, 1), 4)

    def as_list(self) -> list[float]:
        return list(astuple(self))


@dataclass
class TrainState:
    """Everything about training progress that a checkpoint must carry (saved as JSON).
    `step` is the position in the schedule of optimizer steps, applied or skipped (see
    nonfinite_steps); `micro_step` counts forward/backward passes; `epoch_index` is the epoch
    being trained (0-based; logs show the fractional epoch); micro_step_in_epoch the
    micro-batches this process has consumed in it."""

    step: int = 0
    epoch_index: int = 0
    micro_step: int = 0
    micro_step_in_epoch: int = 0
    samples_seen: int = 0
    last_eval_step: int = -1
    run_totals: Totals = field(default_factory=Totals)  # over the run
    pending_totals: Totals = field(default_factory=Totals)  # since the last log record
    world_size: int = 1
    sharding: str = "none"  # runtime.sharding(): how the checkpoint's files are laid out
    per_device_train_batch_size: int = 0
    gradient_accumulation_steps: int = 0
    config_hash: str = ""  # of the options that change what training computes, less the topology
    options: dict = field(default_factory=dict)  # those options themselves, to name changes
    identity: dict = field(default_factory=dict)  # labels and data digests of the run
    log_records: int = 0  # records in log_history.jsonl when the state was saved
    nonfinite_steps: int = 0  # steps skipped (no update) for a NaN/inf loss or gradient
    consecutive_nonfinite: int = 0
    best_metric: float | None = None  # of --metric_for_best_model
    best_step: int = -1
    evaluations_without_improvement: int = 0
    # Seconds spent training, evaluating and checkpointing, over the run (see Stopwatch).
    seconds: dict = field(default_factory=dict)

    @classmethod
    def from_saved(cls, saved: object) -> TrainState:
        """The state of a trainer_state.json, its fields checked; ValueError naming the first
        one that is missing, of the wrong type or out of range."""
        if not isinstance(saved, dict):
            raise ValueError(f"it holds {type(saved).__name__}, not an object")
        saved = upgraded(saved)
        known = {option.name for option in fields(cls)}
        unknown = sorted(set(saved) - known)
        if unknown:
            raise ValueError(f"it has fields no state has: {unknown}")
        missing = [name for name in REQUIRED if name not in saved]
        if missing:
            raise ValueError(f"it lacks {missing}")
        values = {}
        for option in fields(cls):
            if option.name not in saved:
                continue  # a field newer than the checkpoint keeps its default
            value = saved[option.name]
            problem = field_problem(option.name, value)
            if problem:
                raise ValueError(f"{option.name!r} {problem}: got {value!r:.60}")
            values[option.name] = Totals(**value) if option.type == "Totals" else value
        state = cls(**values)
        problem = state.inconsistency()
        if problem:
            raise ValueError(problem)
        return state

    def inconsistency(self) -> str | None:
        """Counts that cannot belong together (an edited or damaged state), or None."""
        if self.nonfinite_steps > self.step:
            return f"it has {self.nonfinite_steps} skipped steps in {self.step} steps"
        if self.consecutive_nonfinite > self.nonfinite_steps:
            return (
                f"it has {self.consecutive_nonfinite} skipped steps in a row but "
                f"{self.nonfinite_steps} in all"
            )
        for name in ("last_eval_step", "best_step"):
            if getattr(self, name) > self.step:
                return f"its {name} {getattr(self, name)} is after its step {self.step}"
        return None

    @property
    def optimizer_steps(self) -> int:
        """Steps that updated the weights: the schedule's position less the skipped ones."""
        return self.step - self.nonfinite_steps


def upgraded(saved: dict) -> dict:
    """A state saved by an earlier version in today's form: `epoch` is now `epoch_index`, and
    the loss totals were lists in TOTALS_FIELDS order."""
    saved = dict(saved)
    if "epoch" in saved and "epoch_index" not in saved:
        saved["epoch_index"] = saved.pop("epoch")
    for name in ("run_totals", "pending_totals"):
        value = saved.get(name)
        if isinstance(value, list) and len(value) == len(TOTALS_FIELDS):
            saved[name] = dict(zip(TOTALS_FIELDS, value, strict=True))
    return saved


# What every state since checkpoints exist has: without them the position is unknown.
REQUIRED = (
    "step",
    "epoch_index",
    "micro_step",
    "micro_step_in_epoch",
    "samples_seen",
    "last_eval_step",
    "run_totals",
    "pending_totals",
    "world_size",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
)
COUNTS = {
    "step",
    "epoch_index",
    "micro_step",
    "micro_step_in_epoch",
    "samples_seen",
    "world_size",
    "per_device_train_batch_size",
    "gradient_accumulation_steps",
    "log_records",
    "nonfinite_steps",
    "consecutive_nonfinite",
    "evaluations_without_improvement",
}


def is_number(value: object) -> bool:
    return type(value) in (int, float) and math.isfinite(value)


def is_float(value: object) -> bool:
    """A number, NaN and infinities included."""
    return type(value) in (int, float)


def field_problem(name: str, value: object) -> str | None:
    """What is wrong with one saved field, or None."""
    if name in COUNTS:
        ok = type(value) is int and value >= 0
        return None if ok else "is not a whole number >= 0"
    if name in ("last_eval_step", "best_step"):
        return None if type(value) is int and value >= -1 else "is not a step (or -1)"
    if name in ("run_totals", "pending_totals"):
        ok = isinstance(value, dict) and sorted(value) == sorted(TOTALS_FIELDS)
        # The next log record's loss may be a skipped step's NaN: shown, never trained on.
        loss_ok = is_number if name == "run_totals" else is_float
        ok = ok and loss_ok(value["loss_sum"])
        ok = ok and all(is_number(value[k]) and value[k] >= 0 for k in TOTALS_FIELDS[1:])
        return None if ok else f"is not a record of {', '.join(TOTALS_FIELDS)}"
    if name == "best_metric":
        return None if value is None or is_number(value) else "is not a number"
    if name == "seconds":
        ok = isinstance(value, dict) and all(is_number(v) and v >= 0 for v in value.values())
        return None if ok else "is not a mapping of seconds"
    if name in ("config_hash", "sharding"):
        return None if isinstance(value, str) else "is not a string"
    if name in ("options", "identity"):
        return None if isinstance(value, dict) else "is not an object"
    return None


def capture_rng() -> dict:
    """The RNG states that training consumes (dropout, shuffling), to set them again later."""
    states = {
        "python": random.getstate(),
        "numpy": np.random.get_state(),
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available():
        states["cuda"] = torch.cuda.get_rng_state_all()
    return states


def restore_rng(states: dict) -> None:
    random.setstate(states["python"])
    np.random.set_state(states["numpy"])
    torch.set_rng_state(states["torch"])
    if "cuda" in states:
        torch.cuda.set_rng_state_all(states["cuda"])
