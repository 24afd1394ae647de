"""The one write policy for the files a command writes beside a user's own (predict's
--output_file, evaluate's eval_results.json, plot's PNG, the demo corpus): written whole and
renamed into place, never through a symbolic link, never over a file accel-trainer did not
write unless the user says so. What accel-trainer wrote is recognised by a hidden mark beside
it holding the file's sha256: an earlier output, unchanged, is ours to replace; a file edited
since is the user's. (A training run's own folder follows the same rules through its marker
and manifests: output_folder.py.)"""

from __future__ import annotations

import errno
import json
import os
import stat

from accel_trainer.errors import ConfigError, OutputError
from accel_trainer.storage.commit import place_whole
from accel_trainer.storage.disk import describe_write_error, why_unwritable
from accel_trainer.storage.hashing import bytes_digest, file_digest

OVERWRITE_FLAG = "--overwrite_output_file"


# mkstemp's name for a file being written: "." + name + "." + 8 characters + ".partial"
PARTIAL_NAME_BYTES = 18


def mark_path(path: str) -> str:
    """The hidden file beside `path` that says accel-trainer wrote it, and what. The folder is
    resolved as the kernel resolves it (`link/..` is the link target's parent), so the mark lies
    where the file does."""
    folder, name = os.path.split(path)
    return os.path.join(os.path.realpath(folder or "."), f".{name}.accel-trainer.json")


def is_regular(path: str) -> bool:
    """A regular file, not a link to one: opening anything else may block (a named pipe)."""
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except OSError:
        return False


def read_mark(path: str) -> str | None:
    """The SHA-256 a mark at `path` holds; None when there is no readable mark."""
    if not is_regular(path):
        return None
    try:
        with open(path, encoding="utf-8") as handle:
            mark = json.load(handle)
    except (OSError, ValueError):
        return None
    digest = mark.get("sha256") if isinstance(mark, dict) else None
    return digest if isinstance(digest, str) else None


def is_ours(path: str) -> bool:
    """Whether `path` is a regular file that accel-trainer wrote, unchanged since."""
    expected = read_mark(mark_path(path)) if is_regular(path) else None
    try:
        return expected is not None and file_digest(path) == expected
    except OSError:
        return False


def file_kind(path: str) -> str:
    mode = os.stat(path).st_mode
    for test, kind in ((stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISFIFO, "a named pipe"), (stat.S_ISSOCK, "a socket")):  # fmt: skip
        if test(mode):
            return kind
    return "not a regular file"


def is_mark(path: str) -> bool:
    """Whether `path` is a regular file that holds a mark of ours."""
    return read_mark(path) is not None


def check_target(
    path: str,
    what: str,
    overwrite: bool,
    elsewhere: str = "Name another file",
    folder_made: bool = False,
) -> None:
    """Refuse, before any work, a file this command must not write: in a missing folder
    (unless the command makes it: `folder_made`), a folder, a device, a symbolic link, a file
    accel-trainer did not write (or that was changed since) without `overwrite`, or one whose
    mark cannot be written. `elsewhere`: the advice to write somewhere else."""
    folder = os.path.realpath(os.path.dirname(path) or ".")
    other = elsewhere[0].lower() + elsewhere[1:]
    if path.endswith(("/", os.sep)) or (os.path.isdir(path) and not os.path.islink(path)):
        raise ConfigError(f"{what} is a folder: got {path!r}. {elsewhere}.")
    if os.path.exists(folder) and not os.path.isdir(folder):
        raise ConfigError(f"{what} is inside a file, not a folder: got {path!r}. {elsewhere}.")
    if not os.path.isdir(folder) and not folder_made:
        raise ConfigError(
            f"{what} is in a folder that does not exist: got {path!r}. Create the folder first."
        )
    if os.path.islink(path):
        if not overwrite:
            raise ConfigError(
                f"{what} is a symbolic link: got {path!r} (to {os.readlink(path)!r}). "
                f"accel-trainer never writes through a link: {other}, or pass {OVERWRITE_FLAG} "
                "to replace the link itself (what it points to is left alone)."
            )
    elif os.path.exists(path) and not os.path.isfile(path):
        raise ConfigError(
            f"{what} is not a regular file: got {path!r} ({file_kind(path)}). {elsewhere}: "
            "output is written whole to a new file and renamed into place."
        )
    elif os.path.exists(path) and not overwrite and not is_ours(path):
        raise ConfigError(
            f"{what} already exists and is not an unchanged output of accel-trainer: got "
            f"{path!r}. {elsewhere}, or pass {OVERWRITE_FLAG} to replace it."
        )
    check_mark_place(path, what, other)
    why = why_unwritable(folder) if os.path.isdir(folder) else None
    if why is not None:
        raise ConfigError(
            f"{what} cannot be written: got {path!r} ({why}). Choose a folder you can write to."
        )


def check_mark_place(path: str, what: str, other: str) -> None:
    """Refuse a target whose mark could not be written, or would replace a file of the user's
    that happens to bear its name."""
    mark = mark_path(path)
    size = len(os.fsencode(os.path.basename(mark))) + PARTIAL_NAME_BYTES
    if size > 255:
        raise ConfigError(
            f"{what} has a name too long for the mark accel-trainer keeps beside it: got "
            f"{path!r} (the mark's name while it is written would be {size} bytes, 255 at "
            "most). Choose a shorter name."
        )
    if os.path.lexists(mark) and not is_mark(mark):
        raise ConfigError(
            f"{what} has a file beside it that is no mark of accel-trainer's: got {mark!r} "
            "(accel-trainer keeps its output's SHA-256 under that name). Move it away, or "
            f"{other}."
        )


def link_new(partial: str, target: str) -> bool:
    """Put `partial` at `target` only if nothing is there; False (nothing moved) if something
    is. The caller removes `partial`."""
    try:
        os.link(partial, target)  # fails if anything is there now: nothing replaced
    except FileExistsError:
        return False
    except OSError as error:  # a file system without hard links
        if error.errno not in (errno.EPERM, errno.EOPNOTSUPP, errno.EXDEV):
            raise
        if os.path.lexists(target):
            return False
        os.replace(partial, target)
    return True


def place_new(partial: str, target: str, what: str) -> None:
    """Move `partial` to `target` only if nothing is there: a file that appeared meanwhile is
    kept, and OutputError says so."""
    if not link_new(partial, target):
        raise OutputError(
            f"{what} appeared or changed while accel-trainer was working: got {target!r}. It "
            f"was kept and nothing was written: run again to write another file, or pass "
            f"{OVERWRITE_FLAG} to replace it."
        )


def create_new(path: str, data: str | bytes, what: str) -> None:
    """Write `data` to `path` whole, where no file may be (see place_new)."""
    place_whole(path, data, lambda partial, target: place_new(partial, target, what))


def write_owned(path: str, data: str | bytes, overwrite: bool, what: str) -> None:
    """Write `data` to `path` whole and mark it as ours. The output and its mark are both
    written to temporary files before anything is moved (a full disk or a bad name stops with
    the earlier output intact); then the output is renamed into place, and its mark. Checked
    again at each rename: a file that appeared at `path` or at the mark's place, or changed
    there, since check_target is kept, not replaced."""
    data = data.encode("utf-8") if isinstance(data, str) else data
    mark_text = json.dumps({"sha256": bytes_digest(data)}) + "\n"

    def place_output(partial: str, target: str) -> None:
        def place_both(mark_partial: str, mark: str) -> None:
            try:
                if overwrite or is_ours(target):
                    os.replace(partial, target)
                else:
                    place_new(partial, target, what)
            except OSError as error:
                error.filename = target
                raise OutputError(describe_write_error(error, target, len(data))) from None
            place_mark(mark_partial, mark, target, what)

        place_whole(mark_path(target), mark_text, place_both)

    place_whole(path, data, place_output)


def place_mark(partial: str, mark: str, path: str, what: str) -> None:
    """Move the mark of the output just placed at `path` into place: over a mark of ours, or
    where nothing is (a file of the user's that appeared there is kept)."""
    try:
        if is_mark(mark):
            os.replace(partial, mark)
            return
        if link_new(partial, mark):
            return
        problem = "a file of yours appeared there meanwhile and was kept"
    except OSError as error:
        problem = error.strerror
    raise OutputError(
        f"{what} was written, but its mark could not be: got {mark!r} ({problem}). A later run "
        f"takes {path!r} for a file of yours: pass {OVERWRITE_FLAG} then, or name another file."
    )
