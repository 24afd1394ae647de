"""Tokenization through `datasets.map`: batched, optionally in worker processes, cached on disk
under a fingerprint of everything that shapes the result, and computed once per machine. A
second run on the same data, tokenizer and options loads the cached rows instead."""

from __future__ import annotations

import glob
import inspect
import json
import logging
import marshal
import os
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from accel_trainer.storage.hashing import json_digest, text_digest

logger = logging.getLogger(__name__)


def cache_folder() -> str:
    """Where tokenized data is cached: beside `datasets`' own cache (HF_DATASETS_CACHE)."""
    import datasets

    return os.path.join(str(datasets.config.HF_DATASETS_CACHE), "accel_trainer")


def tokenizer_fingerprint(tokenizer: Any) -> str:
    """A digest of the tokenizer's full definition: vocabulary, normalisation, added tokens."""
    backend = getattr(tokenizer, "backend_tokenizer", None)
    if backend is not None:
        definition = backend.to_str()
    else:  # a slow tokenizer
        definition = json.dumps(sorted(tokenizer.get_vocab().items()))
    definition += type(tokenizer).__name__ + repr(sorted(tokenizer.special_tokens_map.items()))
    return text_digest(definition)


def task_fingerprint(task: Any) -> dict:
    """What of the task shapes tokenized rows, and the source of its module: a code change
    invalidates the cache."""
    return {
        "settings": task.tokenization_settings(),
        "code": text_digest(task_source(task)),
    }


TASKS_PACKAGE = "accel_trainer.tasks"


def task_source(task: Any) -> str:
    """The source of the task's module; for a built-in task, of every module of
    accel_trainer.tasks (its encoding lives beside it); where there is none to read (a task
    defined in an interactive session), the compiled code of its classes, so that an edit
    still changes it."""
    if type(task).__module__.startswith(f"{TASKS_PACKAGE}."):
        return built_in_tasks_source()
    try:
        return inspect.getsource(sys.modules[type(task).__module__])
    except (OSError, TypeError, KeyError):
        return class_code(type(task)).hex()


def built_in_tasks_source() -> str:
    """The source of every module of accel_trainer.tasks, in a fixed order."""
    root = os.path.dirname(inspect.getfile(sys.modules[TASKS_PACKAGE]))
    paths = sorted(glob.glob(os.path.join(root, "**", "*.py"), recursive=True))
    return "".join(os.path.relpath(path, root) + Path(path).read_text(encoding="utf-8")
                   for path in paths)  # fmt: skip


def class_code(task_class: type) -> bytes:
    """The bytecode (marshal: the same in every process) and plain values of a class and its
    bases, less those of this package, whose modules have a source."""
    parts = []
    for owner in task_class.__mro__:
        if owner.__module__.startswith("accel_trainer") or owner is object:
            continue
        for name, value in sorted(vars(owner).items()):
            function = getattr(value, "__func__", value)  # classmethods, staticmethods
            code = getattr(function, "__code__", None)
            if code is not None:
                parts.append(name.encode() + marshal.dumps(code))
            elif isinstance(value, (str, int, float, bool, tuple, type(None))):
                parts.append(f"{name}={value!r}".encode())
    return b"\0".join(parts)


def fingerprint(parts: dict) -> str:
    from accel_trainer import __version__

    return json_digest({**parts, "accel_trainer": __version__}, 32)


def is_cached(path: str) -> bool:
    """Whether `datasets.map` will load `path` from its cache: one file, or the shards of a
    multi-process map (which any later num_proc reuses)."""
    stem, suffix = os.path.splitext(path)
    return os.path.exists(path) or bool(glob.glob(f"{glob.escape(stem)}_*_of_*{suffix}"))


def tokenize_once_per_node(
    accelerator: Any,
    split: str,
    tokenize: Callable[[dict], Any],
    parts: dict,
    num_workers: int = 0,
    overwrite_cache: bool = False,
    count_text: Callable[[int], str] | None = None,
):
    """`tokenize(map_options)`, run by the first process of each machine, which writes the
    cache; the machine's other processes then read it back. `parts` names everything that
    shapes the result (data fingerprint, tokenizer, task, options); `count_text(rows)` says in
    the log what the split's rows are (by default "N rows")."""
    key = fingerprint({**parts, "split": split})
    folder = cache_folder()
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, f"{split}-{key}.arrow")
    with accelerator.local_main_process_first():
        first = accelerator.is_local_main_process
        # The others ask for the same num_proc: the cache is one file per worker.
        num_proc = num_workers if num_workers > 1 else None
        recompute = overwrite_cache and first
        cached = not recompute and is_cached(path)
        started = time.perf_counter()
        options = {
            "cache_file_name": path,
            "new_fingerprint": key,
            "load_from_cache_file": not recompute,
            "num_proc": num_proc,
        }
        data = tokenize(options)
        if first:
            how = (
                "loaded from the cache" if cached else f"tokenized with {num_proc or 1} process(es)"
            )
            counted = count_text(len(data)) if count_text else f"{len(data)} rows"
            logger.info(
                "%s: %s %s in %.2f s (%s)",
                split,
                counted,
                how,
                time.perf_counter() - started,
                path,
            )
    return data
