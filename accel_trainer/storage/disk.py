"""Disk-space and write-failure messages: what could not be written, why (a full disk, a
read-only file system), how much it needed and how much is free; whether a folder is writable."""

from __future__ import annotations

import errno
import os
import shutil

from accel_trainer.errors import first_line


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
