"""What a committed checkpoint folder is: its name, the manifest listing each file with its size
and sha256, and the checks that a folder is whole and unaltered (nothing unlisted, no link, no
file changed); reading its trainer_state.json."""

from __future__ import annotations

import json
import os
import re
import stat

from accel_trainer.storage.hashing import file_digest

CHECKPOINT_PATTERN = re.compile(r"^checkpoint-(\d+)$")
TEMP_MARKER = ".accel_trainer_temporary"  # in every temporary folder this program makes
MANIFEST = "manifest.json"
TRAINER_STATE = "trainer_state.json"


def checkpoint_name(step: int) -> str:
    return f"checkpoint-{step}"


BOOKKEEPING = (MANIFEST, TEMP_MARKER)  # at the top of a folder, never listed in its manifest


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


def load_trainer_state(folder: str) -> dict:
    with open(os.path.join(folder, TRAINER_STATE), encoding="utf-8") as handle:
        return json.load(handle)
