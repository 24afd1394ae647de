"""Removing committed checkpoints: rotation beyond --save_total_limit, and making room for a
new checkpoint of the same step; a deletion interrupted midway leaves a marked temporary folder,
never a torn checkpoint."""

from __future__ import annotations

import logging
import os

from accel_trainer.storage.commit import TEMP_PREFIX, remove_temporary, touch
from accel_trainer.storage.manifest import TEMP_MARKER, checkpoint_problem, committed_checkpoints

logger = logging.getLogger(__name__)


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
