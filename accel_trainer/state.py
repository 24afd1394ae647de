"""The training progress a checkpoint carries (trainer_state.json), and its validation: a
state read back from disk is checked field by field before anything uses it."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, fields


@dataclass
class TrainState:
    """Everything about training progress that a checkpoint must carry (saved as JSON).
    `step` counts optimizer steps; `micro_step` forward/backward passes; micro_step_in_epoch
    the micro-batches this process has consumed in the current epoch."""

    step: int = 0
    epoch: int = 0
    micro_step: int = 0
    micro_step_in_epoch: int = 0
    samples_seen: int = 0
    last_eval_step: int = -1
    # Over all processes: loss sum, its count, real (non-pad) tokens, padded tokens computed.
    run_totals: list = field(default_factory=lambda: [0.0] * 4)  # over the run
    pending_totals: list = field(default_factory=lambda: [0.0] * 4)  # since the last log record
    world_size: int = 1
    per_device_train_batch_size: int = 0
    gradient_accumulation_steps: int = 0
    config_hash: str = ""  # of the options that change what training computes, less TOPOLOGY
    options: dict = field(default_factory=dict)  # those options themselves, to name changes
    identity: dict = field(default_factory=dict)  # labels and data digests of the run
    log_records: int = 0  # records in log_history.jsonl when the state was saved
    nonfinite_steps: int = 0  # optimizer steps skipped for a NaN/inf loss or gradient
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
        values = {}
        for option in fields(cls):
            if option.name not in saved:
                continue  # a field newer than the checkpoint keeps its default
            value = saved[option.name]
            problem = field_problem(option.name, value)
            if problem:
                raise ValueError(f"{option.name!r} {problem}: got {value!r:.60}")
            values[option.name] = value
        return cls(**values)


COUNTS = {
    "step",
    "epoch",
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


def field_problem(name: str, value: object) -> str | None:
    """What is wrong with one saved field, or None."""
    if name in COUNTS:
        ok = type(value) is int and value >= 0
        return None if ok else "is not a whole number >= 0"
    if name in ("last_eval_step", "best_step"):
        return None if type(value) is int and value >= -1 else "is not a step (or -1)"
    if name in ("run_totals", "pending_totals"):
        ok = isinstance(value, list) and len(value) == 4 and all(map(is_number, value))
        return None if ok else "is not a list of 4 numbers"
    if name == "best_metric":
        return None if value is None or is_number(value) else "is not a number"
    if name == "seconds":
        ok = isinstance(value, dict) and all(is_number(v) and v >= 0 for v in value.values())
        return None if ok else "is not a mapping of seconds"
    if name == "config_hash":
        return None if isinstance(value, str) else "is not a string"
    if name in ("options", "identity"):
        return None if isinstance(value, dict) else "is not an object"
    return None
