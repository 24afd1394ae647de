"""The commit protocol: files written whole into private temporaries and renamed into place,
marked temporary folders (made, removed, cleaned after an interruption), and the final model's
commit into the top of the output folder; no process groups here."""

from __future__ import annotations

import json
import os
import shutil
import tempfile

from accel_trainer.errors import OutputError
from accel_trainer.storage.disk import describe_write_error
from accel_trainer.storage.hashing import file_digest
from accel_trainer.storage.manifest import (
    TEMP_MARKER,
    InvalidCheckpoint,
    folder_files,
    is_confined,
    verify_files,
    write_json_durably,
)

TEMP_PREFIX = ".tmp-checkpoint-"


def new_file_mode() -> int:
    """The mode open() gives a new file under this process's umask (0644 under the usual 022):
    what a file written through a private temporary file is given once whole."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def touch(path: str) -> None:
    """Create an empty marker file at `path`; a link there is replaced, never followed."""
    if os.path.islink(path):
        os.unlink(path)
    os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_NOFOLLOW, 0o644))


def sync_folder(path: str) -> None:
    """Make a rename inside `path` durable."""
    descriptor = os.open(path, os.O_RDONLY)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


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
