"""Shared fixtures: small NER files written by the tests, and a clean Accelerate state."""

from __future__ import annotations

import json
import os
import socket

import pytest

from accel_trainer.tasks.demo import demo_corpus, write_conll, write_demo_corpus

REPO_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


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
    """Run `accel-trainer evaluate` in this process; return the all_results.json it wrote."""
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
    return read_json(os.path.join(str(output_dir), "all_results.json"))
