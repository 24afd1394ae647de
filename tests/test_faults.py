"""Start-up checks and lost processes: a run that cannot work stops every process with one
clear message, and a lost process ends the run within a bounded time, leaving no process behind."""

import os
import signal
import subprocess
import sys
import time

import pytest

from accel_trainer.storage.manifest import committed_checkpoints, read_manifest
from tests.conftest import REPO_ROOT, free_port, start, tail, wait_all
from tests.test_multiprocess import launch_command, start_ranks, wait_for_step

pytestmark = pytest.mark.multiprocess


def train_args(small_data, out, *extra):
    return ["--train_file", small_data[0], "--output_dir", str(out), "--logging_steps", "1",
            "--per_device_train_batch_size", "2", "--num_train_epochs", "5", *extra]  # fmt: skip


def test_accelerate_launch_cpu_with_two_processes_is_explained(small_data, tmp_path):
    out = tmp_path / "out"
    command = [
        sys.executable, "-m", "accelerate.commands.launch", "--cpu", "--num_processes", "2",
        "--main_process_port", str(free_port()), "-m", "accel_trainer", "train",
        *train_args(small_data, out),
    ]  # fmt: skip
    done = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=REPO_ROOT)
    assert done.returncode != 0
    assert "was asked for several processes but started only this one" in done.stderr
    assert not out.exists()


def test_two_plain_copies_on_one_output_dir_are_refused(small_data, tmp_path):
    out = tmp_path / "out"
    env = {**os.environ, "STEP_DELAY_S": "0.2", "OMP_NUM_THREADS": "1"}
    first = start(
        [sys.executable, os.path.join(REPO_ROOT, "tests", "hooked_train.py"), "train",
         *train_args(small_data, out)],
        env, REPO_ROOT, tmp_path / "first.log",
    )  # fmt: skip
    try:
        wait_for_step(out, 1, [first])
        second = subprocess.run(
            [sys.executable, "-m", "accel_trainer", "train", *train_args(small_data, out)],
            capture_output=True, text=True, timeout=120, cwd=REPO_ROOT,
        )  # fmt: skip
        assert first.poll() is None  # the first run goes on, untouched
    finally:
        wait_all([first], timeout_s=0)
    assert second.returncode == 2
    assert f"is in use by another run (process {first.pid} on" in second.stderr
    assert "two separate runs, not one run on two processes" in second.stderr


def test_processes_that_disagree_on_options_all_stop_with_one_message(small_data, tmp_path):
    out, logs = tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    ranks = start_ranks(
        train_args(small_data, out), {}, logs, extra_args=((), ("--learning_rate", "0.002"))
    )
    codes = wait_all(ranks, timeout_s=120)
    assert codes == [2, 2], tail(logs / "rank-0.log")
    assert "process(es) [1] see other options than process 0" in tail(logs / "rank-0.log")
    assert not (out / "config.json").exists()


def worker_pid(launcher_pid: int, rank: int) -> int:
    """The pid of the launcher's worker with this RANK."""
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as handle:
                parent = int(handle.read().rsplit(")", 1)[1].split()[1])
            with open(f"/proc/{name}/environ", "rb") as handle:
                environment = handle.read().split(b"\0")
        except OSError:
            continue
        if parent == launcher_pid and f"RANK={rank}".encode() in environment:
            return int(name)
    raise AssertionError(f"no worker with RANK={rank} under {launcher_pid}")


def alive(pid: int) -> bool:
    """Running, not a zombie."""
    try:
        with open(f"/proc/{pid}/stat") as handle:
            return handle.read().rsplit(")", 1)[1].split()[0] != "Z"
    except OSError:
        return False


@pytest.mark.parametrize(
    ("fault", "bound_s"),
    [
        (signal.SIGKILL, 30),  # torchrun sees the death at once and stops the other process
        # A frozen process: the other gives up after --ddp_timeout (10 s), then torchrun kills
        # the frozen one after its shutdown grace period (30 s).
        (signal.SIGSTOP, 10 + 30 + 20),
    ],
)
def test_a_lost_process_ends_the_run_in_bounded_time(small_data, tmp_path, fault, bound_s):
    out = tmp_path / "out"
    extra = ("--ddp_timeout", "10", "--checkpointing_steps", "1")
    command = launch_command(train_args(small_data, out, *extra), hooked=True)
    env = {**os.environ, "STEP_DELAY_S": "0.2", "OMP_NUM_THREADS": "1"}
    launcher = start(command, env, REPO_ROOT, tmp_path / "launcher.log")
    try:
        wait_for_step(out, 2, [launcher])
        workers = [worker_pid(launcher.pid, rank) for rank in (0, 1)]
        os.kill(workers[1], fault)
        started = time.monotonic()
        [code] = wait_all([launcher], timeout_s=bound_s + 30)
        took = time.monotonic() - started
    finally:
        wait_all([launcher], timeout_s=0)
    log = tail(tmp_path / "launcher.log", 20000)
    print(f"{fault.name} to process 1: the launcher exited {code} after {took:.1f} s")
    assert code not in (0, None), log
    assert took < bound_s, log
    assert "rank      : 1 (local_rank: 1)" in log  # torchrun names the lost process
    if fault == signal.SIGSTOP:
        assert "process 0: lost contact with another process of this run" in log
    assert not any(alive(pid) for pid in workers)
    committed = committed_checkpoints(str(out))
    assert committed and all(read_manifest(path, verify_checksums=True) for _, path in committed)
