"""Reaching the Hugging Face Hub: one short probe before anything downloads, so that a run with
no network fails in seconds (not after a minute of huggingface_hub's retries), or uses the local
cache where the model is there."""

from __future__ import annotations

import glob
import logging
import os

from accel_trainer.errors import ConfigError, DataError

logger = logging.getLogger("accel_trainer")
# Seconds the probe waits for the hub's answer: a reachable hub (or proxy) answers in well
# under a second; huggingface_hub would wait 10 s per request and retry five times.
PROBE_TIMEOUT = 5.0


def looks_local(name_or_path: str) -> bool:
    """A path rather than a hub name: it exists, or it is spelt as a path."""
    return name_or_path.startswith((".", "/", "~")) or os.path.exists(name_or_path)


def offline_mode() -> bool:
    """HF_HUB_OFFLINE, as huggingface_hub (and so transformers and datasets) reads it."""
    from huggingface_hub import constants

    return constants.is_offline_mode()


def hub_problem(timeout: float = PROBE_TIMEOUT) -> str | None:
    """Why the hub (HF_ENDPOINT) cannot be reached, or None when it answers. The request goes
    through huggingface_hub's own client, so its proxies (HTTPS_PROXY) and client factory
    apply; any HTTP status is an answer."""
    from huggingface_hub import constants
    from huggingface_hub.utils import get_session

    try:
        get_session().head(constants.ENDPOINT, timeout=timeout)
    except Exception as error:  # connection, DNS, proxy, TLS and timeout errors alike
        reason = " ".join(str(error).split())[:160] or type(error).__name__
        return f"{constants.ENDPOINT}: {reason}"
    return None


def cached_model(name: str) -> bool:
    """Whether huggingface_hub's cache holds the model's config.json (every transformers model
    has one, and from_pretrained reads it first)."""
    from huggingface_hub import constants, try_to_load_from_cache

    try:
        found = try_to_load_from_cache(name, "config.json", cache_dir=constants.HF_HUB_CACHE)
    except Exception:  # a name that is no valid repo id: not cached
        return False
    return isinstance(found, str)


def model_access(name_or_path: str) -> bool:
    """For --model_name_or_path, before any data is read: True when the model must be loaded
    from the local cache only (the hub does not answer, but the model is cached); ConfigError
    when the hub does not answer and the model is not cached. Local folders need no hub."""
    from huggingface_hub import constants

    if looks_local(name_or_path):
        return False
    cache = constants.HF_HUB_CACHE
    if offline_mode():
        if cached_model(name_or_path):
            return False  # transformers reads the cache itself in offline mode
        raise ConfigError(
            f"--model_name_or_path is no local folder, and with HF_HUB_OFFLINE set the model "
            f"must be in the local cache ({cache}): got {name_or_path!r}. Give a folder written "
            "by save_pretrained, or unset HF_HUB_OFFLINE where the hub is reachable to download "
            "it once."
        )
    problem = hub_problem()
    if problem is None:
        return False
    if cached_model(name_or_path):
        logger.warning(
            "The hub is unreachable (%s): loading %s from the local cache (%s)",
            problem,
            name_or_path,
            cache,
        )
        return True
    raise ConfigError(
        f"--model_name_or_path is no local folder and the hub is unreachable: got "
        f"{name_or_path!r} ({problem}). Point --model_name_or_path at a folder written by "
        "save_pretrained (e.g. a training run's --output_dir), or download the model where the "
        "hub is reachable; HF_HUB_OFFLINE=1 then loads it from the cache without asking the hub."
    )


def cached_dataset(name: str) -> bool:
    """Whether `datasets` holds a prepared copy of a hub dataset, where it looks for one when
    the hub does not answer (HF_DATASETS_CACHE/<namespace>___<name>/<config>/<version>/<hash>)."""
    from datasets import config
    from datasets.naming import camelcase_to_snakecase

    parts = name.split("/")
    parts[-1] = camelcase_to_snakecase(parts[-1])
    root = os.path.join(os.path.expanduser(str(config.HF_DATASETS_CACHE)), "___".join(parts))
    return any(os.path.isdir(path) for path in glob.glob(os.path.join(root, "*", "*", "*")))


def check_dataset_access(name: str) -> None:
    """For --dataset_name, before it is loaded: DataError when it is no local folder, the hub
    does not answer and `datasets` has no cached copy. With a cached copy `datasets` falls
    back to it (after its retries; HF_HUB_OFFLINE=1 skips them)."""
    if looks_local(name) or offline_mode():
        return
    problem = hub_problem()
    if problem is None:
        return
    if cached_dataset(name):
        logger.warning(
            "The hub is unreachable (%s): datasets will use its cached copy of %s after its "
            "retries; set HF_HUB_OFFLINE=1 to skip them",
            problem,
            name,
        )
        return
    raise DataError(
        f"--dataset_name is no local folder and the hub is unreachable: got {name!r} "
        f"({problem}). Give a local dataset folder or data files instead, or, where the "
        "dataset was loaded before, set HF_HUB_OFFLINE=1 to use the local cache."
    )
