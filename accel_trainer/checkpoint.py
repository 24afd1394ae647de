"""Crash-safe checkpoints: write into a temporary folder, commit with a manifest and a rename,
find the newest committed one, and load it back with its RNG states."""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import random
import re
import shutil
import socket
from typing import TYPE_CHECKING

import numpy as np
import torch

from accel_trainer.errors import ConfigError

if TYPE_CHECKING:
    from accelerate import Accelerator

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TEMP_PREFIX = ".tmp-checkpoint-"
MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
LOCK_FILE = ".accel_trainer.lock"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step}"


def file_digest(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def folder_files(folder: str) -> list[str]:
    """Every file below `folder`, relative to it, sorted."""
    return sorted(
        os.path.relpath(os.path.join(root, name), folder)
        for root, _, names in os.walk(folder)
        for name in names
        if name != MANIFEST
    )


def write_manifest(folder: str, step: int, world_size: int) -> None:
    files = {
        name: {
            "size": os.path.getsize(os.path.join(folder, name)),
            "sha256": file_digest(os.path.join(folder, name)),
        }
        for name in folder_files(folder)
    }
    manifest = {"step": step, "world_size": world_size, "files": files}
    path = os.path.join(folder, MANIFEST)
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(manifest, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


def read_manifest(folder: str, verify_checksums: bool = False) -> dict | None:
    """The manifest of a committed checkpoint, or None when it is missing, torn or altered."""
    try:
        with open(os.path.join(folder, MANIFEST), encoding="utf-8") as handle:
            manifest = json.load(handle)
        for name, expected in manifest["files"].items():
            path = os.path.join(folder, name)
            if os.path.getsize(path) != expected["size"]:
                return None
            if verify_checksums and file_digest(path) != expected["sha256"]:
                return None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return manifest


def committed_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every checkpoint with a valid manifest, oldest first."""
    found = []
    if not os.path.isdir(output_dir):
        return found
    for name in os.listdir(output_dir):
        match = CHECKPOINT_PATTERN.match(name)
        path = os.path.join(output_dir, name)
        if match and read_manifest(path) is not None:
            found.append((int(match.group(1)), path))
    return sorted(found)


def remove_torn(output_dir: str) -> list[str]:
    """Delete temporary folders and checkpoints without a valid manifest; return their names."""
    removed = []
    if not os.path.isdir(output_dir):
        return removed
    for name in sorted(os.listdir(output_dir)):
        path = os.path.join(output_dir, name)
        torn = name.startswith(TEMP_PREFIX) or (
            CHECKPOINT_PATTERN.match(name) and read_manifest(path) is None
        )
        if torn and os.path.isdir(path):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(name)
    return removed


def resolve_resume(output_dir: str, request: str | None) -> str | None:
    """The checkpoint folder to resume from: PATH, `latest` (must exist) or `auto` (may not)."""
    if not request:
        return None
    if request in ("latest", "auto"):
        found = committed_checkpoints(output_dir)
        if found:
            return found[-1][1]
        if request == "auto":
            return None
        raise ConfigError(
            f"--resume_from_checkpoint latest found no committed checkpoint in {output_dir!r}. "
            "Use auto to start fresh when there is none."
        )
    if read_manifest(request, verify_checksums=True) is None:
        raise ConfigError(
            f"--resume_from_checkpoint is not a committed checkpoint: got {request!r} (no valid "
            "manifest.json: missing, torn by a crash, or altered). Give a checkpoint-<step> "
            "folder, or latest."
        )
    return request


def save_checkpoint(
    accelerator: Accelerator, output_dir: str, step: int, trainer_state: dict
) -> str:
    """Save the full training state as checkpoint-<step>, committed atomically: every rank
    writes into a temporary folder, then the main process adds the manifest and renames it."""
    final = os.path.join(output_dir, checkpoint_name(step))
    temporary = os.path.join(output_dir, f"{TEMP_PREFIX}{step}")
    if accelerator.is_main_process:
        shutil.rmtree(temporary, ignore_errors=True)
        os.makedirs(temporary)
    accelerator.wait_for_everyone()
    accelerator.save_state(temporary)
    if accelerator.is_main_process:
        with open(os.path.join(temporary, TRAINER_STATE), "w", encoding="utf-8") as handle:
            json.dump(trainer_state, handle, indent=2)
    accelerator.wait_for_everyone()  # every rank's files are written
    if accelerator.is_main_process:
        write_manifest(temporary, step, accelerator.num_processes)
        if os.path.isdir(final):  # an older save of the same step, e.g. before a crash
            shutil.rmtree(final)
        os.rename(temporary, final)
        sync_folder(output_dir)
    accelerator.wait_for_everyone()
    return final


def sync_folder(path: str) -> None:
    """Make a rename inside `path` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def rotate(output_dir: str, keep: int, protect: set[str]) -> list[str]:
    """Delete the oldest committed checkpoints beyond `keep`, never the newest or `protect`."""
    if keep <= 0:
        return []
    found = committed_checkpoints(output_dir)
    removable = [path for _, path in found[:-1] if path not in protect]
    excess = len(found) - keep
    removed = removable[: max(0, excess)]
    for path in removed:
        shutil.rmtree(path, ignore_errors=True)
    return removed


def lock_output_dir(output_dir: str):
    """Hold an exclusive lock on output_dir for as long as the returned file stays open (the
    operating system drops it when the process ends, however it ends)."""
    os.makedirs(output_dir, exist_ok=True)
    handle = open(os.path.join(output_dir, LOCK_FILE), "a+", encoding="utf-8")  # noqa: SIM115
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        handle.seek(0)
        holder = handle.read().strip() or "unknown"
        handle.close()
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
    return handle


def release_output_dir(lock) -> None:
    """Drop the lock of lock_output_dir, and the folder too when nothing else was written."""
    if lock is None:
        return
    folder = os.path.dirname(lock.name)
    os.unlink(lock.name)
    lock.close()
    if not os.listdir(folder):
        os.rmdir(folder)


def load_trainer_state(folder: str) -> dict:
    with open(os.path.join(folder, TRAINER_STATE), encoding="utf-8") as handle:
        return json.load(handle)


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


def config_hash(config_values: dict, ignored: set[str]) -> str:
    """A short hash of the options that change what training computes."""
    kept = {key: value for key, value in sorted(config_values.items()) if key not in ignored}
    return hashlib.sha256(json.dumps(kept, sort_keys=True, default=str).encode()).hexdigest()[:16]
