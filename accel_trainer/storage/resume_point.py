"""Which checkpoint --resume_from_checkpoint names: a folder, `latest` or `auto`, each verified
file by file; checkpoints that do not verify are skipped and left on disk."""

from __future__ import annotations

from accel_trainer.errors import ConfigError
from accel_trainer.storage.manifest import checkpoint_folders, checkpoint_problem


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
