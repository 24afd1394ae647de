"""The output folder's lock: one run at a time writes into a folder; OutputLock, the lock's one
holder, and its release (with the folder, when the run made it and wrote nothing there)."""

from __future__ import annotations

import fcntl
import os
import shutil
import socket

from accel_trainer.errors import ConfigError, OutputError

LOCK_FILE = ".accel_trainer.lock"
RUN_MARKER = ".accel_trainer_run"  # in output folders a run has written into


def lock_output_dir(output_dir: str):
    """Hold an exclusive lock on output_dir for as long as the returned file stays open (the
    operating system drops it when the process ends, however it ends)."""
    created = not os.path.exists(output_dir)
    try:
        os.makedirs(output_dir, exist_ok=True)
        path = os.path.join(output_dir, LOCK_FILE)
        if os.path.islink(path):  # never truncate what a link points to
            os.unlink(path)
        descriptor = os.open(path, os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW, 0o644)
        handle = open(descriptor, "a+", encoding="utf-8")  # noqa: SIM115
    except OSError as error:
        raise OutputError(
            f"--output_dir cannot be written: got {output_dir!r} ({error.strerror}). Choose a "
            "folder you can write to."
        ) from None
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
        if holder == f"{os.getpid()} on {socket.gethostname()}":
            raise ConfigError(
                f"--output_dir {output_dir!r} is in use by another trainer in this process: one "
                "built by AccelerateTrainer.from_files holds it until its fit() ends. Run that "
                "trainer's fit(), call its release_output_dir(), or give this one another "
                "--output_dir."
            ) from None
        raise ConfigError(
            f"--output_dir {output_dir!r} is in use by another run (process {holder}). Two "
            "`accel-trainer train` commands are two separate runs, not one run on two "
            "processes: for that use `accelerate launch --multi_gpu --num_processes N`. "
            "Otherwise give each run its own --output_dir."
        ) from None
    handle.seek(0)
    handle.truncate()
    handle.write(f"{os.getpid()} on {socket.gethostname()}\n")
    handle.flush()
    handle.created_folder = created
    handle.lock_path = path
    return handle


def release_output_dir(lock) -> None:
    """Drop the lock of lock_output_dir, and the folder too when this run created it and
    wrote nothing else there."""
    if lock is None:
        return
    folder = os.path.dirname(lock.lock_path)
    try:
        os.unlink(lock.lock_path)
    except OSError:
        pass
    lock.close()
    if getattr(lock, "created_folder", False) and set(os.listdir(folder)) <= {RUN_MARKER}:
        shutil.rmtree(folder, ignore_errors=True)


class OutputLock:
    """The one holder of an output folder's lock: taken by the main process before it writes
    there (once, by whoever comes first: preparation or fit), released once."""

    def __init__(self, output_dir: str, is_main_process: bool):
        self.output_dir = output_dir
        self.is_main_process = is_main_process
        self._held = None

    def acquire(self) -> None:
        if self._held is None and self.is_main_process:
            self._held = lock_output_dir(self.output_dir)

    def release(self) -> None:
        release_output_dir(self._held)
        self._held = None
