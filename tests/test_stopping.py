"""The README's test command stops cleanly: SIGTERM ends the whole pytest session, also while a
run trains in its process (which would otherwise take the signal as preemption and go on), and
no process a test started is left behind."""

import os
import signal
import subprocess
import sys
import time

from tests.conftest import REPO_ROOT, descendants

INNER_TEST = """
import os, subprocess, sys, time

from accel_trainer import AccelerateTrainer, Observer, TrainConfig

FOLDER = {folder!r}


class Slow(Observer):
    def on_step_end(self, trainer, outcome):
        open(os.path.join(FOLDER, "training"), "w").close()
        time.sleep(0.2)


def test_trains_beside_a_tree_of_processes():
    # a launcher whose worker writes its pid, as `accelerate launch` and its workers
    worker = "import os, time; open({pids!r}, 'w').write(str(os.getpid())); time.sleep(600)"
    launcher = ("import subprocess, sys, time; "
                f"subprocess.Popen([sys.executable, '-c', {{worker!r}}]); time.sleep(600)")
    subprocess.Popen([sys.executable, "-c", launcher])
    config = TrainConfig.from_options(output_dir=os.path.join(FOLDER, "out"), max_train_steps=5000)
    AccelerateTrainer.from_files(config, observers=[Slow()]).fit()


def test_never_reached():
    open(os.path.join(FOLDER, "went on"), "w").close()
"""


def test_sigterm_ends_the_session_and_every_process_it_started(tmp_path):
    pids = str(tmp_path / "worker.pid")
    (tmp_path / "test_inner.py").write_text(INNER_TEST.format(folder=str(tmp_path), pids=pids))
    session = subprocess.Popen(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.conftest", "-p", "no:cacheprovider",
         "--rootdir", str(tmp_path), str(tmp_path / "test_inner.py")],
        cwd=REPO_ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 240
        while not (os.path.exists(pids) and (tmp_path / "training").exists()):
            assert session.poll() is None and time.monotonic() < deadline, session.stdout.read()
            time.sleep(0.2)
        worker = int(open(pids).read())
        assert worker in descendants(session.pid)
        session.send_signal(signal.SIGTERM)  # to pytest alone, as a scheduler or `kill` sends it
        output, _ = session.communicate(timeout=120)
    finally:
        if session.poll() is None:
            os.killpg(session.pid, signal.SIGKILL)
    assert session.returncode != 0 and "KeyboardInterrupt" in output, output[-3000:]
    assert not (tmp_path / "went on").exists()  # the session stopped, not just the test
    for _ in range(50):  # the worker is gone (its zombie reaped by init)
        if not os.path.exists(f"/proc/{worker}") or " Z " in open(f"/proc/{worker}/stat").read():
            break
        time.sleep(0.1)
    else:
        raise AssertionError(f"process {worker} outlived the test session")
