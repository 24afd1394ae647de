"""What surrounds one fit(): its preconditions, the output folder checked, claimed and held,
preemption signals heard, a progress bar on the main process, a lost peer reported as such;
all released at the end."""

from __future__ import annotations

from contextlib import contextmanager
from typing import TYPE_CHECKING

from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from accel_trainer.errors import ConfigError, PeerLost, first_line
from accel_trainer.runtime import Preemption, is_lost_peer, on_main_then_share
from accel_trainer.storage.output_folder import check_output_dir, claim_output_folder

if TYPE_CHECKING:
    from accel_trainer.train.loop import AccelerateTrainer


@contextmanager
def fit_session(trainer: AccelerateTrainer):
    """The output folder locked, preemption signals heard, a progress bar on the main
    process; a lost peer reported as such; all released at the end."""
    if trainer.train_dataloader is None:
        raise ConfigError("fit() needs training data: got train_data=None. Pass a dataset.")
    if trainer.fitted:
        raise ConfigError(
            "fit() already ran on this trainer: a second call would start the optimizer and "
            "the schedule again. Build a new trainer (with --resume_from_checkpoint auto to "
            "continue from its checkpoints)."
        )
    if not trainer.folder_checked:  # a trainer built directly, not by from_files
        check_output_folder(trainer)
    progress = tqdm(desc="train", unit="step", disable=not trainer.accelerator.is_main_process)
    # Log lines of the console handlers go above the bar, each on a line of its own.
    redirect = logging_redirect_tqdm()
    redirect.__enter__()
    try:
        trainer.output_lock.acquire()  # held already when from_files prepared this trainer
        if not trainer.folder_checked:
            claim_output_folder(
                trainer.accelerator, trainer.output_lock, trainer.config, demo=False
            )
            trainer.folder_checked = True
        trainer.fitted = True  # from here on, a second fit() would start the schedule again
        model = trainer.accelerator.unwrap_model(trainer.model, keep_torch_compile=False)
        with Preemption(trainer.accelerator) as preemption, trainer.layout.computing(model):
            yield preemption, progress
    except RuntimeError as error:
        if trainer.accelerator.num_processes > 1 and is_lost_peer(error):
            raise PeerLost(
                f"lost contact with another process of this run: {first_line(error)}. A "
                f"process or node died or hung; the others stop within --ddp_timeout "
                f"({trainer.config.runtime.ddp_timeout} s). Committed checkpoints in "
                f"{trainer.output_dir} are intact: resume with --resume_from_checkpoint auto."
            ) from error
        raise
    finally:
        progress.close()  # so that an error message starts on a line of its own
        redirect.__exit__(None, None, None)
        trainer.output_lock.release()


def check_output_folder(trainer: AccelerateTrainer) -> None:
    """The output folder checked on the main process, its verdict on every process."""
    check = lambda: check_output_dir(trainer.output_dir, trainer.config, demo=False)  # noqa: E731
    on_main_then_share(trainer.accelerator, check)
