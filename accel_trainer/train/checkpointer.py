"""When and how the run's full training state is committed as checkpoint-<step> (every process
writes, the main process commits and rotates) and how a fresh run clears what it replaces."""

from __future__ import annotations

import os
import time
from dataclasses import asdict

from accelerate import Accelerator
from accelerate.logging import get_logger

from accel_trainer.runtime import raise_if_any_failed
from accel_trainer.storage.commit import (
    TEMP_PREFIX,
    attempt,
    make_temporary,
    remove_temporary,
    remove_torn,
    sync_folder,
)
from accel_trainer.storage.manifest import (
    TEMP_MARKER,
    TRAINER_STATE,
    checkpoint_name,
    committed_checkpoints,
    read_manifest,
    write_json_durably,
    write_manifest,
)
from accel_trainer.storage.rotation import discard, rotate, set_aside
from accel_trainer.train.checkpointer_options import CheckpointEvery
from accel_trainer.train.state import TrainState

logger = get_logger(__name__)


class Checkpointer:
    """Decides when a checkpoint is due and commits it; `every_steps`/`every_epoch` come from
    --checkpointing_steps, `keep` from --save_total_limit."""

    def __init__(
        self, accelerator: Accelerator, output_dir: str, every: CheckpointEvery, keep: int
    ):
        self.accelerator = accelerator
        self.output_dir = output_dir
        self.every = every
        self.keep = keep
        self.last_step = -1  # the step of the newest checkpoint this run has (saved or loaded)

    def due(self, moment: str, state: TrainState, best_must_be_saved: bool) -> bool:
        """Whether to checkpoint now; `moment`: "step" (after an optimizer step) or "epoch"."""
        if self.last_step == state.step:
            return False
        if best_must_be_saved:
            return True
        if moment == "epoch":
            return self.every.epoch
        return self.every.steps is not None and state.step % self.every.steps == 0

    def save(self, state: TrainState, protect: set[str], estimate: int) -> str:
        """Commit `state` with the model, optimizer, scheduler and RNG as checkpoint-<step>,
        then rotate (never `protect`); every process takes part."""
        started = time.perf_counter()
        path = save_checkpoint(
            self.accelerator, self.output_dir, state.step, asdict(state), estimate
        )
        self.last_step = state.step
        if self.accelerator.is_main_process:
            rotate(self.output_dir, self.keep, protect={path, *protect})
            size = sum(f["size"] for f in read_manifest(path)["files"].values())
            logger.info(
                "step %d: committed %s (%.1f MB) in %.2f s",
                state.step,
                path,
                size / 1e6,
                time.perf_counter() - started,
            )
        self.accelerator.wait_for_everyone()
        return path

    def start(self, replace_earlier: bool) -> None:
        """Before the run's first step: remove our own interrupted temporary folders and, with
        `replace_earlier` (a fresh run with --overwrite_output_dir), the earlier checkpoints."""
        if self.accelerator.is_main_process:
            for name in remove_torn(self.output_dir):
                logger.warning("removed %s: a temporary folder of an interrupted save", name)
            if replace_earlier:
                for _, stale in committed_checkpoints(self.output_dir):
                    discard(stale)
        self.accelerator.wait_for_everyone()


def save_checkpoint(
    accelerator: Accelerator, output_dir: str, step: int, trainer_state: dict, estimate: int = 0
) -> str:
    """Save the full training state as checkpoint-<step>, committed atomically: every rank
    writes into a temporary folder, then the main process adds the manifest and renames it.
    A failed write (a full disk, say) stops every process with OutputError and leaves the
    committed checkpoints as they were; `estimate` is the expected size, for the message."""
    final = os.path.join(output_dir, checkpoint_name(step))
    temporary = os.path.join(output_dir, f"{TEMP_PREFIX}{step}")
    failure = None
    if accelerator.is_main_process:
        failure = attempt(lambda: make_temporary(temporary), temporary, estimate)
    raise_if_any_failed(accelerator, failure, temporary)

    def write_state() -> None:
        accelerator.save_state(temporary)
        if accelerator.is_main_process:
            write_json_durably(os.path.join(temporary, TRAINER_STATE), trainer_state)

    failure = attempt(write_state, temporary, estimate)
    raise_if_any_failed(accelerator, failure, temporary)  # every rank's files are written
    if accelerator.is_main_process:
        failure = missing_process_files(temporary, accelerator.num_processes)
    raise_if_any_failed(accelerator, failure, temporary)
    if accelerator.is_main_process:

        def commit() -> None:
            write_manifest(temporary, step, accelerator.num_processes)
            if os.path.isdir(final):
                set_aside(final)
            os.rename(temporary, final)
            sync_folder(output_dir)
            os.unlink(os.path.join(final, TEMP_MARKER))

        failure = attempt(commit, temporary, estimate)
    raise_if_any_failed(accelerator, failure, temporary)
    return final


def missing_process_files(folder: str, world_size: int) -> str | None:
    """Why `folder` lacks what every process wrote (its RNG state, and its shards), or None:
    each node wrote into its own file system instead of one they all share."""
    missing = [
        rank for rank in range(world_size)
        if not os.path.exists(os.path.join(folder, f"random_states_{rank}.pkl"))
    ]  # fmt: skip
    if not missing:
        return None
    remove_temporary(folder)
    return (
        f"the checkpoint files of process(es) {missing} are not in {folder}: the processes do "
        "not share this folder (each node wrote into its own disk). Give --output_dir on a "
        "file system every node sees; committed checkpoints are intact."
    )
