"""Shared fixtures: small NER files written by the tests, and a clean Accelerate state."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

# Tokenization caches go to this session's own folder, not the user's (subprocesses inherit it,
# and a test's subprocess that imports this file keeps it); removed when the session ends.
SESSION_CACHE = None
if "ACCEL_TRAINER_TEST_CACHE" not in os.environ:
    SESSION_CACHE = tempfile.mkdtemp(prefix="accel_trainer-test-cache-")
    os.environ["ACCEL_TRAINER_TEST_CACHE"] = os.environ["HF_DATASETS_CACHE"] = SESSION_CACHE

from accel_trainer.tasks.demo import demo_corpus, write_conll, write_demo_corpus  # noqa: E402

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


# The test command stops cleanly: SIGTERM (or Ctrl-C) ends the session, not just the test that
# runs, and no process a test started outlives it.
def stop_the_tests(signum, frame):
    raise KeyboardInterrupt(f"stopped by signal {signum}")


def adopt_orphans() -> None:
    """Become the reaper of this session's descendants (Linux): a launcher killed before its
    workers leaves them to this process, which ends them at the end of the session."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(36, 1, 0, 0, 0)  # PR_SET_CHILD_SUBREAPER
    except (OSError, AttributeError):
        pass


def descendants(pid: int) -> list[int]:
    """Every living process below `pid`, read from /proc (empty where there is none)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc") if os.path.isdir("/proc") else []:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", encoding="utf-8") as handle:
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, ValueError, IndexError):
            continue
        if fields[0] != "Z":  # a zombie is dead already
            children.setdefault(int(fields[1]), []).append(int(entry))
    found, stack = [], [pid]
    while stack:
        for child in children.get(stack.pop(), []):
            found.append(child)
            stack.append(child)
    return found


def pytest_configure(config):
    signal.signal(signal.SIGTERM, stop_the_tests)
    adopt_orphans()


def pytest_unconfigure(config):
    for pid in descendants(os.getpid()):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    if SESSION_CACHE is not None:
        shutil.rmtree(SESSION_CACHE, ignore_errors=True)


@pytest.fixture(autouse=True)
def sigterm_stops_the_tests(monkeypatch):
    """A run training in this process takes SIGTERM as preemption and lets the test go on; here
    it stops the tests, as everywhere else in the session."""
    from accel_trainer.runtime import Preemption

    monkeypatch.setattr(
        Preemption, "_request", lambda self, signum, frame: stop_the_tests(signum, frame)
    )


def reset_accelerate() -> None:
    """Accelerate keeps process-wide singletons; forget them before the next in-process run."""
    from accelerate.state import AcceleratorState, GradientState

    AcceleratorState._reset_state(reset_partial_state=True)
    GradientState._reset_state()


@pytest.fixture(autouse=True)
def fresh_accelerate_state():
    """Each test's in-process runs start from scratch."""
    yield
    reset_accelerate()


@pytest.fixture
def no_model_building(monkeypatch):
    """Bad input must be refused before any model is built (the heavy work)."""
    from accel_trainer import prepare

    def refuse(*args, **kwargs):
        raise AssertionError("a model was built despite bad input")

    for name in ("build_tiny_bert", "load_pretrained", "build_model", "load_saved_model"):
        monkeypatch.setattr(prepare, name, refuse)


@pytest.fixture(scope="session")
def demo_data(tmp_path_factory) -> tuple[str, str]:
    """The demo corpus as the no-argument run writes it: (train.conll, dev.conll)."""
    return write_demo_corpus(str(tmp_path_factory.mktemp("demo-data")))


@pytest.fixture(scope="session")
def small_data(tmp_path_factory) -> tuple[str, str]:
    """A small corpus for quick runs: 48 training and 37 dev sentences (37 is odd on purpose)."""
    folder = tmp_path_factory.mktemp("small-data")
    train, dev = str(folder / "train.conll"), str(folder / "dev.conll")
    write_conll(train, demo_corpus(48, seed=11))
    write_conll(dev, demo_corpus(37, seed=12))
    return train, dev


@pytest.fixture(scope="session")
def scaling_data(tmp_path_factory):
    """64 training sentences of 3 to 15 words, and 7 dev sentences (not a multiple of 2 or 3)."""
    folder = tmp_path_factory.mktemp("scaling-data")
    train, dev = str(folder / "train.conll"), str(folder / "dev.conll")
    write_conll(train, demo_corpus(64, seed=21))
    write_conll(dev, demo_corpus(7, seed=22))
    return train, dev


def write_jsonl(path, records) -> str:
    with open(path, "w", encoding="utf-8") as handle:
        for record in records:
            handle.write(json.dumps(record) + "\n")
    return str(path)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def read_json(path) -> dict:
    with open(path, encoding="utf-8") as handle:
        return json.load(handle)


def read_jsonl(path) -> list[dict]:
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def evaluate_saved(model_dir, data_file, output_dir, *flags) -> dict:
    """Run `accel-trainer evaluate` in this process; return the eval_results.json it wrote."""
    from accel_trainer.cli import main

    status = main(
        [
            "evaluate",
            "--model_name_or_path",
            str(model_dir),
            "--validation_file",
            str(data_file),
            "--output_dir",
            str(output_dir),
            *flags,
        ]
    )
    assert status == 0
    return read_json(os.path.join(str(output_dir), "eval_results.json"))


def inject_nan(trainer, micro_steps) -> None:
    """Make the logits, so the loss, NaN at the given forward passes (1-based, counted in this
    process) of the training model."""
    calls = {"n": 0}

    def hook(module, args, kwargs, output):
        if module.training:
            calls["n"] += 1
            if calls["n"] in micro_steps:
                output.logits = output.logits * float("nan")
        return output

    trainer.accelerator.unwrap_model(trainer.model).register_forward_hook(hook, with_kwargs=True)


def trace_consumed_rows(trainer, record) -> None:
    """Call record(micro_step, step, row_ids) for every micro-batch the trainer trains on;
    micro_step and step count from the start of the run, across resumes."""
    from accel_trainer.train import Observer

    class RowTracer(Observer):
        def on_step_begin(self, trainer, micro_batches):
            for offset, batch in enumerate(micro_batches):
                micro_step = trainer.state.micro_step + offset
                record(micro_step, trainer.state.step, batch["row_id"].tolist())

    trainer.add_observer(RowTracer())


def start(command, env, cwd, log_path):
    """Start a command in its own process group, output to a file (no pipe to fill up)."""
    with open(log_path, "w", encoding="utf-8") as log:
        return subprocess.Popen(
            command,
            stdout=log,
            stderr=subprocess.STDOUT,
            cwd=cwd,
            env=env,
            start_new_session=True,
        )


def wait_all(processes, timeout_s: float) -> list[int | None]:
    """Exit codes (None: still running at the deadline); then every process group is killed."""
    deadline = time.monotonic() + timeout_s
    codes = []
    try:
        for process in processes:
            try:
                codes.append(process.wait(timeout=max(0.0, deadline - time.monotonic())))
            except subprocess.TimeoutExpired:
                codes.append(None)
    finally:
        # Finished or not: workers outlive a killed `accelerate launch`, and a node whose peer
        # failed would wait for it until the rendezvous timeout.
        for process in processes:
            kill_group(process)
    return codes


def kill_group(process) -> None:
    try:
        os.killpg(process.pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    process.wait()


def tail(path, chars: int = 4000) -> str:
    with open(path, encoding="utf-8", errors="replace") as handle:
        return handle.read()[-chars:]


def without_dropout(trainer) -> None:
    """Dropout off, so that runs on different topologies can compute the same thing."""
    import torch

    for module in trainer.model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0


# Log record keys that measure time or memory, so differ between two runs of the same training.
MEASURED_KEYS = ("tokens_per_second", "peak_memory_mb")


def computed_records(records: list[dict]) -> list[dict]:
    """Log records without the measured keys: what two runs of the same training share."""
    return [{k: v for k, v in record.items() if k not in MEASURED_KEYS} for record in records]
