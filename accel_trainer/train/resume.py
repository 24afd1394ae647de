"""Resuming: which checkpoint (verified file by file on the main process), whether it fits this
run (options, data, labels, topology; checked before any model is built), and restoring the
state, data position and RNG streams from it."""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from typing import TYPE_CHECKING

from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import load

from accel_trainer.errors import ConfigError, first_line
from accel_trainer.lora import LOAD_ERRORS, load_training_state
from accel_trainer.runtime import (
    checkpoint_layout,
    on_main_then_share,
    seed_everything,
    sharding,
)
from accel_trainer.storage.hashing import json_digest
from accel_trainer.storage.manifest import load_manifest, load_trainer_state
from accel_trainer.storage.output_folder import OPTIONS_ADDED
from accel_trainer.storage.resume_point import resolve_resume
from accel_trainer.train.state import TrainState, capture_rng

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig

logger = get_logger(__name__)
# Option values an earlier version saved under another name: (option, old value) -> new value.
RENAMED_VALUES = {("loss_normalization", "tokens"): "global"}
UNSET_MEANS = {"lora_target_modules": "(peft's default for the model)"}
DESCRIBE_TOPOLOGY = "{} process(es) x per-device batch {} x accumulation {}".format


@dataclass
class ResumePoint:
    """A verified checkpoint folder and its trainer state."""

    path: str
    saved: dict


def training_options(config: TrainConfig) -> dict:
    """The options that change what training computes, less how the global batch is split:
    those whose field says a resumed run must keep them (metadata "on_resume")."""
    table = config.option_table()
    return {
        key: value
        for key, value in config.to_dict().items()
        if table[key].field.metadata.get("on_resume", "keep") == "keep"
    }


def options_hash(config: TrainConfig) -> str:
    """A short hash of training_options, for checkpoints that predate their listing."""
    return json_digest(training_options(config), 16)


def choose_checkpoint(accelerator: Accelerator, output_dir: str, request: str | None):
    """The checkpoint to resume from (None: start fresh), chosen on the main process, which
    hashes the files once."""

    def choose():
        return resolve_resume(output_dir, request, warn=logger.warning)

    return on_main_then_share(accelerator, choose)


def plan_resume(
    accelerator: Accelerator, config: TrainConfig, identity: dict
) -> ResumePoint | None:
    """Choose the checkpoint and check that it fits this run, before any heavy work."""
    path = choose_checkpoint(
        accelerator, config.resolved_output_dir(), config.checkpointing.resume_from_checkpoint
    )
    if path is None:
        return None
    try:
        saved = load_trainer_state(path)
        state = TrainState.from_saved(saved)
        manifest = load_manifest(path)
        if (manifest["step"], manifest["world_size"]) != (state.step, state.world_size):
            raise ValueError(
                f"it is for step {state.step} on {state.world_size} process(es), the manifest "
                f"for step {manifest['step']} on {manifest['world_size']}"
            )
    except (OSError, ValueError) as error:
        raise ConfigError(
            f"--resume_from_checkpoint {path} has an unusable trainer_state.json ({error}). "
            "Give another checkpoint."
        ) from None
    now = (
        accelerator.num_processes,
        config.batching.per_device_train_batch_size,
        config.batching.resolved_accumulation_steps(accelerator.num_processes),
    )
    check_sharding(path, state.sharding, sharding(accelerator))
    check_options(path, saved, config)
    check_identity(path, saved, identity)
    check_topology(path, saved, now, config.checkpointing.allow_topology_change)
    return ResumePoint(path, saved)


def check_sharding(path: str, saved: str, now: str) -> None:
    """Refuse a checkpoint whose weights and optimizer are laid out for another sharding."""
    if checkpoint_layout(saved) == checkpoint_layout(now):
        return
    raise ConfigError(
        f"--resume_from_checkpoint {path} was saved with sharding {saved!r}, this run has "
        f"{now!r}: its model and optimizer files are laid out for that one. Resume with the "
        "accelerate config of that run (--config_file), or start a new run in another "
        "--output_dir."
    )


def option_value(key: str, value) -> str:
    """An option's value as a message shows it; None is the default of options that have
    one chosen later (peft's targets for the model's architecture)."""
    if value is None and key in UNSET_MEANS:
        return UNSET_MEANS[key]
    return repr(value)


def same_option(key: str, before, now) -> bool:
    """Equal values; for the model, also one folder spelled two ways (a trailing slash, a
    relative and an absolute path, a link to it)."""
    if before == now:
        return True
    if key != "model_name_or_path" or not isinstance(before, str) or not isinstance(now, str):
        return False
    return os.path.isdir(before) and os.path.isdir(now) and os.path.samefile(before, now)


def check_options(path: str, saved: dict, config: TrainConfig) -> None:
    """Refuse a checkpoint saved with other training options, naming each one."""
    before, now = saved.get("options"), training_options(config)
    if isinstance(before, dict):  # compared as values: 2 epochs and 2.0 are the same option
        before = {key: RENAMED_VALUES.get((key, value), value) for key, value in before.items()}
        before = {**OPTIONS_ADDED, **before}
        # Options one side does not have (another task's, added since and not in
        # OPTIONS_ADDED) are not compared.
        changed = [
            f"--{key} {option_value(key, before[key])} then, {option_value(key, now[key])} now"
            for key in sorted(set(before) & set(now))
            if not same_option(key, before[key], now[key])
        ]
    elif saved.get("config_hash") != options_hash(config):
        # A checkpoint from before options were recorded: only their hash is known.
        changed = [f"options hash {saved.get('config_hash')} then, {options_hash(config)} now"]
    else:
        changed = []
    if not changed:
        return
    raise ConfigError(
        f"--resume_from_checkpoint {path} was saved with other training options: "
        f"{'; '.join(changed)}. Resume with the options of that run (its trainer_state.json "
        "lists them under 'options'), or start a new run in another --output_dir."
    )


def check_identity(path: str, saved: dict, identity: dict) -> None:
    """Refuse a checkpoint of a run on other data or labels (which would also give other
    vocabulary or head sizes)."""
    before = saved.get("identity") or {}
    changed = [
        f"{key} {describe(before[key])} then, {describe(value)} now"
        for key, value in identity.items()
        if key in before and before[key] != value
    ]
    if changed:
        raise ConfigError(
            f"--resume_from_checkpoint {path} was saved by a run on other data: "
            f"{'; '.join(changed)}. Resume with the data (and LoRA's base model) of that run, or "
            "start a new run in another --output_dir."
        )


def describe(value) -> str:
    text = repr(value)
    return text if len(text) <= 120 else text[:117] + "..."


def topology(saved: dict) -> tuple[int, int, int]:
    return (
        saved["world_size"],
        saved["per_device_train_batch_size"],
        saved["gradient_accumulation_steps"],
    )


def rng_files(world_size: int) -> list[str]:
    return [f"random_states_{rank}.pkl" for rank in range(world_size)]


def check_topology(path: str, saved: dict, now: tuple, allow_change: bool) -> None:
    """Refuse a resume that cannot be bit-exact unless --allow_topology_change, and one that
    would change the global batch in any case."""
    before = topology(saved)
    present = set(os.listdir(path))
    missing_rng = [name for name in rng_files(now[0]) if name not in present]
    if allow_change:
        if before[0] * before[1] * before[2] != now[0] * now[1] * now[2]:
            raise ConfigError(
                f"--allow_topology_change keeps the global batch, but {path} was saved with "
                f"{DESCRIBE_TOPOLOGY(*before)} = {before[0] * before[1] * before[2]} examples "
                f"per optimizer step and this run has {DESCRIBE_TOPOLOGY(*now)} = "
                f"{now[0] * now[1] * now[2]}. Set --per_device_train_batch_size and "
                "--gradient_accumulation_steps so that the products match."
            )
        if before != now:
            logger.warning(
                "resuming %s, saved with %s, on %s: every optimizer step sees the same "
                "examples, but the result is no longer bit-exact",
                path,
                DESCRIBE_TOPOLOGY(*before),
                DESCRIBE_TOPOLOGY(*now),
            )
        return
    if before != now:
        raise ConfigError(
            f"--resume_from_checkpoint {path} was saved with {DESCRIBE_TOPOLOGY(*before)}, this "
            f"run has {DESCRIBE_TOPOLOGY(*now)}: the data order and random streams would "
            "change. Resume with the same settings, or add --allow_topology_change to keep the "
            "global batch and give up bit-exactness."
        )
    if missing_rng:
        ranks = [int(name.split("_")[-1].split(".")[0]) for name in missing_rng]
        raise ConfigError(
            f"--resume_from_checkpoint {path} has no RNG state for process(es) {ranks} "
            f"({', '.join(missing_rng)}): the resumed run could not be bit-exact. Use another "
            "checkpoint, or add --allow_topology_change to reseed those processes."
        )


def load_rng_state(path: str, rank: int) -> dict | None:
    """This process's RNG state in the checkpoint (None when the checkpoint has none for it);
    ConfigError when the file is there but cannot be read: Accelerate would only log that."""
    file = os.path.join(path, f"random_states_{rank}.pkl")
    if not os.path.exists(file):
        return None
    try:
        states = load(file)
        if not all(key in states for key in ("random_state", "torch_manual_seed")):
            raise ValueError(f"it holds {sorted(states)}")
    except Exception as error:  # unpickling raises many kinds
        raise ConfigError(
            f"--resume_from_checkpoint {path} has an unreadable RNG state "
            f"random_states_{rank}.pkl ({type(error).__name__}: {first_line(error)}). Give "
            "another checkpoint."
        ) from None
    return states


@dataclass
class Position:
    """Where training stands in the data, and how the global batch is split now."""

    batches_per_epoch: int  # this process's micro-batches in one epoch
    examples: int  # in the training set
    total_steps: int
    num_epochs: int
    topology: tuple[int, int, int]  # processes, per-device batch, accumulation


def restore(accelerator: Accelerator, model, point: ResumePoint, position: Position, seed: int):
    """Load the checkpoint into the prepared `model`, optimizer and scheduler; return its
    TrainState moved to this run's topology, and the RNG state the next batch must see (None
    when the data iterator may draw first)."""
    path, saved = point.path, point.saved
    has_rng = load_rng_state(path, accelerator.process_index) is not None
    try:
        load_training_state(accelerator, path, model)
    except LOAD_ERRORS as error:
        raise ConfigError(
            f"--resume_from_checkpoint {path} does not fit this model: "
            f"{state_dict_problem(error)}. Resume with the model and data of that run."
        ) from None
    state = TrainState.from_saved(saved)  # checked by plan_resume
    if topology(saved) != position.topology:
        move_to_topology(state, topology(saved), position)
    if not has_rng:
        # A process the checkpoint did not have: a fresh, reproducible stream of its own.
        seed_everything((seed + 1_000_003 * state.step) % (2**32 - 2**16), per_process=True)
    check_position(path, state, position)
    batches = position.batches_per_epoch
    if state.micro_step_in_epoch >= batches and state.last_eval_step == saved["step"]:
        state.epoch_index, state.micro_step_in_epoch = state.epoch_index + 1, 0
    rng = capture_rng() if 0 < state.micro_step_in_epoch < batches else None
    logger.info(
        "resumed from %s at step %d (epoch %d, micro-batch %d)",
        path,
        state.step,
        state.epoch_index,
        state.micro_step_in_epoch,
    )
    return state, rng


def move_to_topology(state: TrainState, saved: tuple[int, int, int], position: Position) -> None:
    """Keep the data position, in examples, when the global batch is split differently.
    Checkpoints fall on optimizer steps, so the position is a whole number of global
    batches, or the end of the epoch."""
    world_size, batch, accumulation = saved
    saved_batches = math.ceil(math.ceil(position.examples / batch) / world_size)
    if state.micro_step_in_epoch >= saved_batches:
        state.micro_step_in_epoch = position.batches_per_epoch
    else:
        steps_into_epoch = state.micro_step_in_epoch // accumulation
        state.micro_step_in_epoch = steps_into_epoch * position.topology[2]
    (
        state.world_size,
        state.per_device_train_batch_size,
        state.gradient_accumulation_steps,
    ) = position.topology


def check_position(path: str, state: TrainState, position: Position) -> None:
    """Refuse a saved position this run cannot have reached (a damaged or edited state)."""
    inside = state.micro_step_in_epoch < position.batches_per_epoch
    if (
        state.step > position.total_steps
        or state.epoch_index > position.num_epochs
        or state.micro_step_in_epoch > position.batches_per_epoch
        or (inside and state.micro_step_in_epoch % position.topology[2] != 0)
    ):
        raise ConfigError(
            f"--resume_from_checkpoint {path} has a position this run never reaches: step "
            f"{state.step} of {position.total_steps}, epoch {state.epoch_index} of "
            f"{position.num_epochs}, micro-batch {state.micro_step_in_epoch} of "
            f"{position.batches_per_epoch}. Give another checkpoint."
        )


def state_dict_problem(error: Exception) -> str:
    """The tensors a state-dict load names (size mismatches, missing keys), or its first line."""
    lines = [line.strip() for line in str(error).splitlines()]
    named = [line for line in lines if "size mismatch" in line or "Missing key" in line]
    return "; ".join(named[:4]) if named else first_line(error)
