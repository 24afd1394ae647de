"""The on-disk commit protocol of checkpoints and the final model: temporary folders, manifests
with sha256, atomic renames, rotation, the output-folder lock; no process groups here."""

from __future__ import annotations

import errno
import fcntl
import json
import logging
import os
import random
import re
import shutil
import socket
import stat
import tempfile

import numpy as np
import torch

from accel_trainer.errors import ConfigError, OutputError, first_line
from accel_trainer.hashing import file_digest

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TEMP_PREFIX = ".tmp-checkpoint-"
TEMP_MARKER = ".accel_trainer_temporary"  # in every temporary folder this program makes
MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"
LOCK_FILE = ".accel_trainer.lock"
RUN_MARKER = ".accel_trainer_run"  # in output folders a run has written into
logger = logging.getLogger(__name__)


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step}"


BOOKKEEPING = (MANIFEST, TEMP_MARKER)  # at the top of a folder, never listed in its manifest


def new_file_mode() -> int:
    """The mode open() gives a new file under this process's umask (0644 under the usual 022):
    what a file written through a private temporary file is given once whole."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def folder_files(folder: str) -> list[str]:
    """Every file (and link) below `folder`, relative to it, sorted; not the bookkeeping."""
    return sorted(
        relative
        for root, directories, names in os.walk(folder)
        for name in names + [d for d in directories if os.path.islink(os.path.join(root, d))]
        for relative in [os.path.relpath(os.path.join(root, name), folder)]
        if relative not in BOOKKEEPING
    )


def unexpected_entries(folder: str, listed: set[str]) -> list[str]:
    """What lies in `folder` beyond its listed files: other files, links (the bookkeeping
    files too, when they are links), and folders that hold no listed file."""
    found = [name for name in folder_files(folder) if name not in listed]
    found += [name for name in BOOKKEEPING if os.path.islink(os.path.join(folder, name))]
    parents = {os.path.dirname(name) for name in listed}
    parents |= {os.path.dirname(parent) for parent in parents}
    for root, directories, _ in os.walk(folder):
        for name in directories:
            relative = os.path.relpath(os.path.join(root, name), folder)
            if not any(p == relative or p.startswith(relative + os.sep) for p in parents):
                found.append(relative + os.sep)
    return sorted(found)


def touch(path: str) -> None:
    """Create an empty marker file at `path`; a link there is replaced, never followed."""
    if os.path.islink(path):
        os.unlink(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))


def write_manifest(folder: str, step: int, world_size: int) -> None:
    files = {
        name: {
            "size": os.path.getsize(os.path.join(folder, name)),
            "sha256": file_digest(os.path.join(folder, name)),
        }
        for name in folder_files(folder)
    }
    manifest = {"step": step, "world_size": world_size, "files": files}
    write_json_durably(os.path.join(folder, MANIFEST), manifest)


def write_json_durably(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)
        handle.flush()
        os.fsync(handle.fileno())


class InvalidCheckpoint(Exception):
    """A folder that is not a whole, committed checkpoint; the message says why."""


def load_manifest(folder: str) -> dict:
    """The manifest of `folder`, checked for shape and confinement (every name a relative path
    inside the folder); InvalidCheckpoint otherwise."""
    path = os.path.join(folder, MANIFEST)
    if not os.path.isfile(path):
        raise InvalidCheckpoint(
            f"it has no {MANIFEST} (not written by accel-trainer, or its save never finished)"
        )
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
    except (OSError, ValueError) as error:
        raise InvalidCheckpoint(f"its {MANIFEST} cannot be read ({error})") from None
    files = manifest.get("files") if isinstance(manifest, dict) else None
    if not isinstance(files, dict) or not files:
        raise InvalidCheckpoint(f"its {MANIFEST} lists no files")
    for key in ("step", "world_size"):
        if type(manifest.get(key)) is not int or manifest[key] < 0:
            raise InvalidCheckpoint(f"its {MANIFEST} has no valid {key!r}")
    match = CHECKPOINT_PATTERN.match(os.path.basename(os.path.normpath(folder)))
    if match and int(match.group(1)) != manifest["step"]:
        raise InvalidCheckpoint(
            f"its {MANIFEST} is for step {manifest['step']}, not {match.group(1)}"
        )
    for name, entry in files.items():
        if not is_confined(name):
            raise InvalidCheckpoint(
                f"its {MANIFEST} names {name!r}, which is not a relative path inside the folder"
            )
        valid_entry = (
            isinstance(entry, dict)
            and type(entry.get("size")) is int
            and isinstance(entry.get("sha256"), str)
            and re.fullmatch(r"[0-9a-f]{64}", entry["sha256"])
        )
        if not valid_entry:
            raise InvalidCheckpoint(f"its {MANIFEST} entry for {name!r} has no size and sha256")
    return manifest


def is_confined(name: object) -> bool:
    """Whether a manifest name is a plain relative path that stays inside its folder."""
    if not isinstance(name, str) or not name or "\x00" in name or os.path.isabs(name):
        return False
    return os.path.normpath(name) == name and ".." not in name.split(os.sep)


def verify_files(folder: str, files: dict, checksums: bool) -> None:
    """Every listed file is a regular file inside `folder` (no link, device or folder) with
    the listed size and, with `checksums`, the listed sha256; InvalidCheckpoint otherwise."""
    root = os.path.realpath(folder)
    for name, expected in sorted(files.items()):
        path = os.path.join(folder, name)
        try:
            info = os.lstat(path)
        except OSError:
            raise InvalidCheckpoint(f"{name} is missing") from None
        inside = os.path.realpath(path).startswith(root + os.sep)
        if not stat.S_ISREG(info.st_mode) or not inside:
            raise InvalidCheckpoint(f"{name} is not a regular file inside the folder")
        if info.st_size != expected["size"]:
            raise InvalidCheckpoint(
                f"{name} has {info.st_size} bytes, the manifest says {expected['size']}"
            )
        if checksums and file_digest(path) != expected["sha256"]:
            raise InvalidCheckpoint(f"{name} does not match the sha256 it was saved with")


def checkpoint_problem(folder: str, verify_checksums: bool = False) -> str | None:
    """Why `folder` is not a whole committed checkpoint, or None when it is one."""
    try:
        manifest = load_manifest(folder)
        if TRAINER_STATE not in manifest["files"]:
            raise InvalidCheckpoint(f"its {MANIFEST} does not list {TRAINER_STATE}")
        unlisted = unexpected_entries(folder, set(manifest["files"]))
        if unlisted:  # loading could read what nothing vouches for
            raise InvalidCheckpoint(f"it holds {unlisted[0]}, which its {MANIFEST} does not list")
        verify_files(folder, manifest["files"], verify_checksums)
    except InvalidCheckpoint as problem:
        return str(problem)
    return None


def read_manifest(folder: str, verify_checksums: bool = False) -> dict | None:
    """The manifest of a committed checkpoint, or None when it is missing, torn or altered."""
    if checkpoint_problem(folder, verify_checksums) is not None:
        return None
    return load_manifest(folder)


def checkpoint_folders(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every folder named checkpoint-<step>, committed or not, oldest first."""
    found = []
    if not os.path.isdir(output_dir):
        return found
    for name in os.listdir(output_dir):
        match = CHECKPOINT_PATTERN.match(name)
        path = os.path.join(output_dir, name)
        if match and os.path.isdir(path) and not os.path.islink(path):
            found.append((int(match.group(1)), path))
    return sorted(found)


def committed_checkpoints(output_dir: str) -> list[tuple[int, str]]:
    """(step, path) of every checkpoint whose manifest and file sizes check out, oldest first."""
    return [(step, path) for step, path in checkpoint_folders(output_dir) if read_manifest(path)]


def make_temporary(path: str) -> None:
    """A fresh temporary folder of ours, marked so that cleanup never touches anything else."""
    if os.path.islink(path):
        os.unlink(path)  # a link in our place: removed, its target untouched
    remove_temporary(path)
    os.makedirs(path)
    touch(os.path.join(path, TEMP_MARKER))


def remove_temporary(path: str) -> bool:
    """Delete `path` if it is one of our temporary folders (marked, or empty); else keep it."""
    if not os.path.isdir(path) or os.path.islink(path):
        return False
    marker = os.path.join(path, TEMP_MARKER)
    if os.listdir(path) and not (os.path.isfile(marker) and not os.path.islink(marker)):
        return False
    remove_marked(path)
    return True


def remove_torn(output_dir: str) -> list[str]:
    """Delete the temporary folders an interrupted save or rotation of ours left behind;
    return their names. Nothing else is ever deleted: a checkpoint-<step> folder that does not
    verify is left on disk (resume skips it with a warning)."""
    removed = []
    if not os.path.isdir(output_dir):
        return removed
    for name in sorted(os.listdir(output_dir)):
        if name.startswith(TEMP_PREFIX) and remove_temporary(os.path.join(output_dir, name)):
            removed.append(name)
    return removed


def resolve_resume(output_dir: str, request: str | None, warn=None) -> str | None:
    """The checkpoint folder to resume from, verified file by file (sha256): PATH (refused when
    it does not verify), `latest` (the newest that verifies; one must) or `auto` (that, or None
    to start fresh). Checkpoints that do not verify are skipped with `warn` and left on disk."""
    if not request:
        return None
    if request not in ("latest", "auto"):
        problem = checkpoint_problem(request, verify_checksums=True)
        if problem is not None:
            raise ConfigError(
                "--resume_from_checkpoint is not a committed checkpoint that verifies: got "
                f"{request!r} ({problem}). It is left as it is; give another checkpoint-<step> "
                "folder, or latest for the newest one that verifies."
            )
        return request
    warn = warn or (lambda message: None)
    candidates = checkpoint_folders(output_dir)
    for _, path in reversed(candidates):
        problem = checkpoint_problem(path, verify_checksums=True)
        if problem is None:
            return path
        warn(f"skipping {path}: {problem}; it is left on disk, untouched")
    if request == "latest":
        whole = f" ({len(candidates)} checkpoint folder(s), none whole)" if candidates else ""
        raise ConfigError(
            f"--resume_from_checkpoint latest found no committed checkpoint that verifies in "
            f"{output_dir!r}{whole}. Use auto to start fresh, or give a checkpoint folder."
        )
    if candidates:
        warn(
            f"--resume_from_checkpoint auto: none of the {len(candidates)} checkpoint folder(s) "
            f"in {output_dir} verifies, so this run STARTS FROM STEP 0. They are left on disk."
        )
    return None


def set_aside(folder: str) -> None:
    """Make room for a new checkpoint of the same step: an older committed save of ours is
    deleted (a rerun from an earlier checkpoint replaces it); anything else is renamed, never
    deleted."""
    if not os.path.islink(folder) and checkpoint_problem(folder, verify_checksums=True) is None:
        discard(folder)
        return
    number = 1
    while os.path.exists(f"{folder}.unverified-{number}"):
        number += 1
    os.rename(folder, f"{folder}.unverified-{number}")
    logger.warning(
        "%s did not verify and was in the way of a new checkpoint: renamed to %s.unverified-%d",
        folder,
        folder,
        number,
    )


def discard(folder: str) -> None:
    """Delete a committed checkpoint so that an interruption leaves a marked temporary folder
    (removed by the next start), never a torn checkpoint-<step>."""
    parent, name = os.path.split(folder)
    doomed = os.path.join(parent, f"{TEMP_PREFIX}deleting-{name}")
    touch(os.path.join(folder, TEMP_MARKER))
    os.rename(folder, doomed)
    remove_temporary(doomed)


def remove_marked(folder: str) -> None:
    """Delete a marked temporary folder, its marker last: until it is empty, it stays marked."""
    for entry in os.scandir(folder):
        if entry.name == TEMP_MARKER:
            continue
        if entry.is_dir(follow_symlinks=False):
            shutil.rmtree(entry.path, ignore_errors=True)
        else:
            os.unlink(entry.path)
    shutil.rmtree(folder, ignore_errors=True)


def attempt(write, target: str, estimate: int = 0) -> str | None:
    """Run `write`; None when it worked, else one line on what could not be written, why, and
    how much space it needed. Our temporary folder `target` is removed on failure."""
    from safetensors import SafetensorError
    from torch.distributed.checkpoint.api import CheckpointException

    try:
        write()
        return None
    # torch's writer raises RuntimeError on a full disk, safetensors its own error, sharded
    # (DCP) saves a CheckpointException, which is no Exception
    except (OSError, RuntimeError, SafetensorError, CheckpointException) as error:
        if isinstance(error, CheckpointException):  # what failed, on the first failing rank
            error = next(iter(error.failures.values()))[0]
        remove_temporary(target)
        return describe_write_error(error, target, estimate)


def describe_write_error(error: Exception, target: str, estimate: int) -> str:
    folder = target if os.path.isdir(target) else os.path.dirname(os.path.abspath(target))
    free = free_bytes(folder)
    written = getattr(error, "filename", None) or target
    reason = getattr(error, "strerror", None) or first_line(error)
    code = getattr(error, "errno", None)
    # Without an errno (torch's and safetensors' writers), a short free count tells a full disk.
    full = code in (errno.ENOSPC, errno.EDQUOT) or (
        code is None and estimate and free is not None and free < estimate
    )
    if full:
        reason = "no space left on device"
    if code == errno.EROFS:
        reason = "read-only file system"
    need = f" It needs about {human_size(estimate)}" if estimate else ""
    have = f"{';' if need else ''} {human_size(free)} free there" if free is not None else ""
    return (
        f"could not write {written}: {reason}.{need}{have}{'.' if need or have else ''} Free "
        "space or choose another folder; what was committed before is intact."
    )


def human_size(count: int) -> str:
    for unit, size in (("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if count >= size:
            return f"{count / size:.1f} {unit}"
    return f"{count} bytes"


def write_atomically(path: str, text: str | bytes) -> None:
    """Write `text` to a temporary file beside `path`, then rename it over `path` (a link
    there is replaced, never followed); a full disk leaves `path` as it was and raises
    OutputError saying what was needed."""
    place_whole(path, text, os.replace)


def place_whole(path: str, data: str | bytes, place) -> None:
    """Write `data` whole into a private temporary file beside `path`, then `place(partial,
    path)` it; the temporary file never outlives the call."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    partial = None
    try:
        # A new file of our own (O_EXCL, no link followed), moved to `path` when whole.
        descriptor, partial = tempfile.mkstemp(
            dir=os.path.dirname(path) or ".",
            prefix=f".{os.path.basename(path)}.",
            suffix=".partial",
        )
        with open(descriptor, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        os.chmod(partial, new_file_mode())
        place(partial, path)
    except OSError as error:
        error.filename = path
        raise OutputError(describe_write_error(error, path, len(data))) from None
    finally:
        if partial is not None and os.path.lexists(partial):
            os.unlink(partial)


def why_unwritable(folder: str) -> str | None:
    """Why nothing can be written into the existing `folder` (a read-only file system, no
    permission), or None."""
    if os.statvfs(folder).f_flag & os.ST_RDONLY:
        return f"{folder} is on a read-only file system"
    if not os.access(folder, os.W_OK | os.X_OK):
        return f"no permission to write in {folder}"
    return None


def free_bytes(folder: str) -> int | None:
    while folder and not os.path.isdir(folder):
        folder = os.path.dirname(folder)
    try:
        return shutil.disk_usage(folder or ".").free
    except OSError:
        return None


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
    excess = len(found) - keep
    removed = []
    for _, path in found[:-1]:
        if len(removed) >= excess:
            break
        if path in protect:
            continue
        problem = checkpoint_problem(path, verify_checksums=True)
        if problem is not None:  # damaged, not ours to judge: kept, and not counted
            logger.warning("not rotating %s away: %s; it is left on disk", path, problem)
            continue
        discard(path)
        removed.append(path)
    return removed


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


# The final model lies at the top of the output folder (from_pretrained loads it there); it is
# written into MODEL_TEMP first and moved into place only once complete, its files listed in
# MODEL_MANIFEST. The manifest is removed before the move and put back last, so a folder whose
# move was interrupted reads as incomplete, and the next run finishes the move from MODEL_TEMP.
MODEL_TEMP = ".tmp-final-model"
MODEL_MANIFEST = "model_manifest.json"
MODEL_FILES = (
    "config.json",
    "model.safetensors",
    "pytorch_model.bin",
    "adapter_config.json",  # --save_adapter_only
    "adapter_model.safetensors",
    "all_results.json",
)


def commit_final_model(output_dir: str, write, step: int, estimate: int = 0) -> None:
    """Write the final model with `write(folder)` into a temporary folder, list its files with
    their sha256, then move them into output_dir; the previous model stays whole until the new
    one is complete on disk. OutputError when a write fails (the temporary folder is removed)."""
    temporary = os.path.join(output_dir, MODEL_TEMP)
    previous = model_manifest(output_dir)

    def prepare() -> None:
        make_temporary(temporary)
        write(temporary)
        mode = new_file_mode()  # some writers make private temporary files
        for name in folder_files(temporary):
            path = os.path.join(temporary, name)
            if os.path.isfile(path) and not os.path.islink(path):
                os.chmod(path, mode)
        files = {
            name: {"size": os.path.getsize(path), "sha256": file_digest(path)}
            for name in folder_files(temporary)
            for path in [os.path.join(temporary, name)]
        }
        replaces = sorted(set(previous["files"]) - set(files)) if previous else []
        manifest = {"step": step, "files": files, "replaces": replaces}
        write_json_durably(os.path.join(temporary, MODEL_MANIFEST), manifest)

    failure = attempt(prepare, temporary, estimate)
    if failure is not None:
        raise OutputError(failure)
    finish_final_model(output_dir)


def finish_final_model(output_dir: str) -> bool:
    """Move a complete final model from its temporary folder into place (again, after an
    interruption: each move is idempotent); remove an incomplete one. True when one moved."""
    temporary = os.path.join(output_dir, MODEL_TEMP)
    if not os.path.isdir(temporary) or os.path.islink(temporary):
        return False  # nothing pending, or a link that is not ours to follow
    pending = model_manifest(temporary, check_files=False)  # some files may be moved already
    if pending is None:  # the save never finished: the previous model is still whole
        remove_temporary(temporary)
        return False
    top = os.path.join(output_dir, MODEL_MANIFEST)
    if os.path.exists(top):
        os.unlink(top)
    for name in pending["files"]:
        source = os.path.join(temporary, name)
        if os.path.exists(source):
            os.makedirs(os.path.dirname(os.path.join(output_dir, name)), exist_ok=True)
            os.replace(source, os.path.join(output_dir, name))
    for name in pending.get("replaces", []):
        stale = os.path.join(output_dir, name)
        if is_confined(name) and os.path.isfile(stale):
            os.unlink(stale)
    sync_folder(output_dir)
    os.replace(os.path.join(temporary, MODEL_MANIFEST), top)
    sync_folder(output_dir)
    shutil.rmtree(temporary, ignore_errors=True)
    return True


def model_manifest(folder: str, check_files: bool = True) -> dict | None:
    """The final-model manifest of `folder` when it (and, with `check_files`, the sizes of its
    files) check out."""
    path = os.path.join(folder, MODEL_MANIFEST)
    if os.path.islink(folder) or os.path.islink(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            manifest = json.load(handle)
        files = manifest["files"]
        if type(manifest["step"]) is not int or not isinstance(files, dict):
            return None
        if not all(is_confined(name) for name in files):
            return None
        if check_files:
            verify_files(folder, files, checksums=False)
    except (OSError, ValueError, KeyError, TypeError, InvalidCheckpoint):
        return None
    return manifest


def final_model_step(output_dir: str) -> int | None:
    """The step of a complete final model in output_dir (one whose move is pending counts),
    or None when there is none or it is incomplete."""
    manifest = model_manifest(os.path.join(output_dir, MODEL_TEMP), check_files=False)
    manifest = manifest or model_manifest(output_dir)
    return None if manifest is None else manifest["step"]


def model_files_present(output_dir: str) -> list[str]:
    return [name for name in MODEL_FILES if os.path.exists(os.path.join(output_dir, name))]


def final_model_problem(model_dir: str) -> str | None:
    """Why a saved model folder must not be used, or None: an interrupted save, or a file that
    no longer matches the sha256 it was saved with. Folders without a manifest (from the hub,
    or saved by other tools) are not checked here."""
    if model_manifest(os.path.join(model_dir, MODEL_TEMP), check_files=False) is not None:
        return (
            "its final save was interrupted before the model was moved into place. Run the "
            "same `accel-trainer train` command again with --resume_from_checkpoint auto to "
            "finish it"
        )
    path = os.path.join(model_dir, MODEL_MANIFEST)
    if not os.path.exists(path):
        if os.path.isdir(os.path.join(model_dir, MODEL_TEMP)):
            return (
                "its final save was interrupted and the model is incomplete. Train again "
                "(with --resume_from_checkpoint auto when it has checkpoints)"
            )
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            files = json.load(handle)["files"]
        verify_files(model_dir, files, checksums=True)
    except InvalidCheckpoint as problem:
        return f"it is damaged: {problem}. Train it again, or restore the folder from a copy"
    except (OSError, ValueError, KeyError, TypeError) as error:
        return f"its {MODEL_MANIFEST} cannot be read ({error}). Restore the folder from a copy"
    return None
