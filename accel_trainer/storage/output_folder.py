"""The output folder's rules: what a run may write into, replace or continue, the markers
that say who wrote it, finishing an interrupted final save, and claiming it for a run (the one
lock-and-check-again routine)."""

from __future__ import annotations

import json
import logging
import os
from typing import TYPE_CHECKING

from accel_trainer.errors import ConfigError, RunComplete
from accel_trainer.models import TOKENIZER_FILES
from accel_trainer.runtime import on_main_then_share, share_from_main
from accel_trainer.storage.commit import (
    MODEL_FILES,
    MODEL_MANIFEST,
    MODEL_TEMP,
    final_model_problem,
    final_model_step,
    finish_final_model,
    model_files_present,
    model_manifest,
    touch,
)
from accel_trainer.storage.disk import why_unwritable
from accel_trainer.storage.lock import LOCK_FILE, RUN_MARKER, OutputLock
from accel_trainer.storage.manifest import TEMP_MARKER, committed_checkpoints

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig

logger = logging.getLogger("accel_trainer")
DEMO_MARKER = ".accel_trainer_demo"  # in output folders written by demo runs
OPTIONS_FILE = "training_config.json"  # the effective options of the run that saved the model
# Options that say where a run writes, not what it trains: a demo rerun may differ in them.
WHERE_OPTIONS = ("output_dir", "overwrite_output_dir", "config")
# What a run writes at the top of its output folder, besides the model and its checkpoints.
RUN_OUTPUTS = (
    *TOKENIZER_FILES,
    "special_tokens_map.json",
    "added_tokens.json",
    "README.md",
    OPTIONS_FILE,
    "log_history.jsonl",
    MODEL_MANIFEST,
    "runs",
)


class SaveFinished(Exception):
    """A run whose final save was interrupted while moving into place, now finished: nothing
    is left to train."""

    def __init__(self, output_dir: str, step: int):
        super().__init__(
            f"Finished the interrupted final save of step {step}: {output_dir} holds the model, "
            "and no checkpoint is newer. Nothing is left to train."
        )
        path = os.path.join(output_dir, "all_results.json")
        with open(path, encoding="utf-8") as handle:
            self.results = json.load(handle)


def finish_interrupted_save(accelerator, output_dir: str) -> None:
    """Complete a final save that was interrupted while its files moved into place (the main
    process moves them); SaveFinished when that leaves nothing to train."""
    moved = accelerator.is_main_process and finish_final_model(output_dir)
    moved = share_from_main(accelerator, moved)
    if not moved:
        return
    logger.warning("moved the final model of an interrupted save into place in %s", output_dir)
    step = final_model_step(output_dir)
    newest = max((found for found, _ in committed_checkpoints(output_dir)), default=-1)
    if step is not None and newest <= step:
        raise SaveFinished(output_dir, step)


def mark_output_dir(output_dir: str, is_demo: bool) -> None:
    """Say that this program writes into output_dir (so its files are ours to replace on a
    rerun), and whether a later demo run may replace them."""
    touch(os.path.join(output_dir, RUN_MARKER))
    demo_marker = os.path.join(output_dir, DEMO_MARKER)
    if not is_demo and os.path.lexists(demo_marker):
        os.unlink(demo_marker)  # your run's folder now: a later demo run must not replace it


def claim_output_folder(
    accelerator, lock: OutputLock, config: TrainConfig, demo: bool, finish_save: bool = False
) -> None:
    """Take the output folder's lock, check the folder again now that no other run can change
    it (one may have finished meanwhile), and mark it as this run's; the lock is released when
    that fails. `finish_save` (a run prepared from files): an interrupted final save is finished
    first (SaveFinished when nothing is left to train) and a model this run replaces is named."""
    output_dir = lock.output_dir
    lock.acquire()
    try:
        on_main_then_share(accelerator, lambda: check_output_dir(output_dir, config, demo=demo))
        if finish_save:
            finish_interrupted_save(accelerator, output_dir)
        if accelerator.is_main_process:
            if finish_save:
                note_replaced_model(output_dir, config)
            mark_output_dir(output_dir, demo)
    except BaseException:
        lock.release()
        raise


def check_output_dir(output_dir: str, config: TrainConfig, demo: bool | None = None) -> None:
    """Refuse a folder this run must not write into: a file, a read-only folder, someone else's
    folder for the demo, or a saved model or checkpoints that the options do not say to
    replace or continue. `demo`: whether the run writes the demo corpus (default: when the
    config names no data)."""
    demo = config.is_demo if demo is None else demo
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(
            f"--output_dir is a file, not a folder: got {output_dir!r}. Name a folder."
        )
    check_writable_folder(output_dir)
    in_the_way = [
        name
        for name in (*MODEL_FILES, *RUN_OUTPUTS)
        # runs/ is the trackers' folder; the run log has its own check when it starts
        if name not in ("runs", "log_history.jsonl")
        and os.path.isdir(os.path.join(output_dir, name))
        and not os.path.islink(os.path.join(output_dir, name))
    ]
    temporary = os.path.join(output_dir, MODEL_TEMP)
    # A link there is replaced, never followed; anything else must be ours.
    foreign = os.path.lexists(temporary) and not os.path.islink(temporary)
    if foreign and not is_our_temporary(temporary):
        raise ConfigError(
            f"--output_dir holds {MODEL_TEMP}, which accel-trainer did not write: got "
            f"{output_dir!r}. The final save writes there: move it away, or choose another "
            "--output_dir."
        )
    if in_the_way:
        raise ConfigError(
            f"--output_dir has a folder where the model's file goes: got {output_dir!r} (with a "
            f"folder {in_the_way[0]}). Move it away, or choose another --output_dir."
        )
    if os.path.isdir(output_dir) and not config.overwrite_output_dir:
        check_saved_run(output_dir, config, demo)
    if demo:
        check_demo_folder(output_dir)


def is_our_temporary(folder: str) -> bool:
    """Whether `folder` is a temporary folder of ours: marked, or a complete final model."""
    if not os.path.isdir(folder) or os.path.islink(folder):
        return False
    marked = os.path.isfile(os.path.join(folder, TEMP_MARKER))
    return marked or model_manifest(folder, check_files=False) is not None


def check_saved_run(output_dir: str, config: TrainConfig, demo: bool) -> None:
    """Refuse to replace a saved model or checkpoints unless told to continue the run, and
    refuse to continue a run that is finished."""
    checkpoints = committed_checkpoints(output_dir)
    newest = checkpoints[-1][0] if checkpoints else None
    finished = final_model_step(output_dir)
    present = model_files_present(output_dir)
    interrupted = os.path.isdir(os.path.join(output_dir, MODEL_TEMP))
    if model_manifest(os.path.join(output_dir, MODEL_TEMP), check_files=False) is not None:
        return  # a complete final model whose move into place was interrupted: finished later
    if config.checkpointing.resume_from_checkpoint:
        if finished is not None and (newest is None or newest <= finished):
            check_finished_run(output_dir, config, finished, bool(checkpoints))
            return  # its final model is damaged: the run is resumed and saves it again
        if finished is None and present and not (checkpoints or interrupted):
            raise ConfigError(
                f"--output_dir already holds a model and no checkpoints: got {output_dir!r} "
                f"(has {', '.join(present)}), so there is nothing to resume. Choose another "
                "folder, or pass --overwrite_output_dir to replace it."
            )
        return
    if checkpoints:
        raise ConfigError(
            f"--output_dir holds checkpoints of an earlier run: got {output_dir!r} (newest "
            f"{os.path.basename(checkpoints[-1][1])}). Pass --resume_from_checkpoint auto to "
            "continue it, or --overwrite_output_dir to start over (its checkpoints are deleted)."
        )
    if demo and is_demo_output(output_dir):
        check_demo_rerun(output_dir, config)
        return
    if present:
        raise ConfigError(
            f"--output_dir already holds a model: got {output_dir!r} (has {', '.join(present)}). "
            "Choose another folder, or pass --overwrite_output_dir to replace it. (A run that was "
            "interrupted continues from its checkpoints with --resume_from_checkpoint auto.)"
        )
    written = [name for name in RUN_OUTPUTS if os.path.lexists(os.path.join(output_dir, name))]
    if written and not os.path.isfile(os.path.join(output_dir, RUN_MARKER)):
        raise ConfigError(
            f"--output_dir already holds files that a run writes: got {output_dir!r} (has "
            f"{', '.join(written)}). Choose another folder (e.g. a subfolder), or pass "
            "--overwrite_output_dir to replace them."
        )


def check_finished_run(output_dir: str, config: TrainConfig, step: int, resumable: bool) -> None:
    """A resume request on a finished run: RunComplete for `auto` when it is this run (the same
    training options) and its model is intact; ConfigError when it is another run's, or for
    latest or a path. Returns when the model is damaged and a checkpoint can save it again."""
    changes = changed_options(output_dir, config, kept_on_resume=True)
    if changes:
        raise ConfigError(
            f"--output_dir holds the finished model of a run with other training options: got "
            f"{output_dir!r} ({'; '.join(changes)}). Choose another --output_dir for this run, "
            "or pass --overwrite_output_dir to train again."
        )
    damage = final_model_problem(output_dir)
    if damage is not None:
        if not resumable:
            raise ConfigError(
                f"--output_dir holds a finished model that cannot be used: got {output_dir!r}; "
                f"{damage}."
            )
        logger.warning(
            "the final model in %s cannot be used (%s): resuming from the newest checkpoint to "
            "save it again",
            output_dir,
            damage,
        )
        return
    if config.checkpointing.resume_from_checkpoint == "auto":
        raise RunComplete(
            f"the run in {output_dir} is complete: its model was saved at step {step} and no "
            "checkpoint is newer; nothing to resume."
        )
    raise ConfigError(
        f"--output_dir already holds the finished model of this run: got {output_dir!r} (saved "
        f"at step {step}; no checkpoint is newer), so there is nothing to resume. Choose another "
        "folder, or pass --overwrite_output_dir to train again."
    )


def check_demo_rerun(output_dir: str, config: TrainConfig) -> None:
    """Refuse to replace the finished model of an earlier demo run with one trained with other
    options (a rerun of the same command replaces it)."""
    step = final_model_step(output_dir)
    if step is None:
        return  # no finished model: an interrupted demo run, which this one redoes
    changes = changed_options(output_dir, config)
    if changes == []:
        return
    if changes is None:
        what = f"its {OPTIONS_FILE} cannot be read, so its options are unknown"
    else:
        shown = ", ".join(changes[:4]) + (
            f" and {len(changes) - 4} more" if len(changes) > 4 else ""
        )
        what = f"this run changes {shown}"
    raise ConfigError(
        f"--output_dir holds the finished model of a demo run with other options: got "
        f"{output_dir!r} (saved at step {step}; {what}). Pass --output_dir NEW to keep it and "
        "train into a new folder, or --overwrite_output_dir to replace it."
    )


# Options added since some runs were saved: the value that does what those runs did.
OPTIONS_ADDED = {"document_context": 0, "documents": "marked"}


def changed_options(
    output_dir: str, config: TrainConfig, kept_on_resume: bool = False
) -> list[str] | None:
    """`name old -> new` for each option the saved run's OPTIONS_FILE and this run's effective
    options set differently (those naming where a run writes aside; with `kept_on_resume`, only
    those a resumed run must keep); None when it cannot be read. An option only one of them
    knows (another version's, not in OPTIONS_ADDED) is no change."""
    try:
        with open(os.path.join(output_dir, OPTIONS_FILE), encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError):
        return None
    if not isinstance(saved, dict):
        return None
    saved = {**OPTIONS_ADDED, **saved}
    ours = config.effective_options()

    def shown(value) -> str:
        return "none" if value is None else str(value)

    table = config.option_table()

    def compared(name: str) -> bool:
        if name in WHERE_OPTIONS:
            return False
        return not kept_on_resume or (
            name in table and table[name].field.metadata.get("on_resume", "keep") == "keep"
        )

    return [
        f"{name} {shown(saved[name])} -> {shown(value)}"
        for name, value in ours.items()
        if compared(name) and name in saved and saved[name] != value
    ]


def note_replaced_model(output_dir: str, config: TrainConfig) -> None:
    """Say which finished model a fresh run will replace when it saves its own: an identical
    demo rerun's, or the one --overwrite_output_dir replaces."""
    step = final_model_step(output_dir)
    if step is None or config.checkpointing.resume_from_checkpoint:
        return
    if config.overwrite_output_dir:
        logger.warning(
            "--overwrite_output_dir: this run replaces the finished model in %s (saved at step "
            "%d) when it saves its own.",
            output_dir,
            step,
        )
    elif config.is_demo:
        logger.info(
            "%s holds the finished model of a demo run with the same options (saved at step %d): "
            "this run replaces it when it saves its own.",
            output_dir,
            step,
        )


def check_writable_folder(output_dir: str) -> None:
    """Refuse an output folder (or the nearest existing folder above it) that cannot be
    written, before any work."""
    existing = os.path.abspath(output_dir)
    too_long = [part for part in existing.split(os.sep) if len(os.fsencode(part)) > 255]
    if too_long:
        raise ConfigError(
            f"--output_dir has a name longer than 255 bytes: got {too_long[0][:40]!r}... "
            "Choose a shorter name."
        )
    while not os.path.isdir(existing):
        if os.path.lexists(existing):
            raise ConfigError(
                f"--output_dir cannot be written: got {output_dir!r} ({existing} is a file, not "
                "a folder). Choose another folder."
            )
        existing = os.path.dirname(existing)
    why = why_unwritable(existing)
    if why is None:
        return
    raise ConfigError(
        f"--output_dir cannot be written: got {output_dir!r} ({why}). Choose a folder you can "
        "write to."
    )


def check_demo_folder(output_dir: str) -> None:
    """The demo writes its corpus into OUTPUT_DIR/data: only into a new or empty folder, or
    one an earlier demo run wrote."""
    if not os.path.isdir(output_dir) or is_demo_output(output_dir):
        return
    entries = sorted(set(os.listdir(output_dir)) - {LOCK_FILE})
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise ConfigError(
            f"--output_dir is not empty and not an earlier demo run's: got {output_dir!r} (has "
            f"{shown}). With no data options, accel-trainer trains on its demo corpus and writes "
            "it into OUTPUT_DIR/data: give a new or empty folder, or your data with --train_file."
        )


def is_demo_output(output_dir: str) -> bool:
    """Whether output_dir was written by an earlier demo run (on the built-in corpus)."""
    return os.path.isfile(os.path.join(output_dir, DEMO_MARKER))
