"""Observer hooks: what a user (or a test) attaches to watch a run, called at the right moments
with the right values, without changing what the run computes."""

import torch

from accel_trainer import TrainConfig, commands
from accel_trainer.train import Observer
from tests.conftest import reset_accelerate


class Recorder(Observer):
    """Writes down every hook call."""

    def __init__(self):
        self.calls = []

    def on_train_begin(self, trainer):
        self.calls.append(("train_begin", trainer.state.step))

    def on_step_begin(self, trainer, micro_batches):
        rows = [batch["row_id"].tolist() for batch in micro_batches]
        self.calls.append(("step_begin", trainer.state.step, rows))

    def on_step_end(self, trainer, outcome):
        self.calls.append(("step_end", trainer.state.step, outcome.skipped, outcome.examples))

    def on_log(self, trainer, record):
        self.calls.append(("log", record["step"], sorted(record)))

    def on_evaluate(self, trainer, metrics):
        self.calls.append(("evaluate", trainer.state.step, metrics["eval_f1"]))

    def on_checkpoint(self, trainer, path):
        self.calls.append(("checkpoint", trainer.state.step, path))

    def on_train_end(self, trainer, results):
        self.calls.append(("train_end", results["global_step"], results["eval_f1"]))


def run(small_data, out, observers=()):
    config = TrainConfig.from_options(
        train_file=small_data[0],
        validation_file=small_data[1],
        output_dir=str(out),
        max_train_steps=4,
        per_device_train_batch_size=8,
        gradient_accumulation_steps=2,
        logging_steps=2,
        eval_steps=2,
        checkpointing_steps="2",
    )
    trainer = commands.build_trainer(config)
    for observer in observers:
        trainer.add_observer(observer)
    results = trainer.fit()
    weights = {
        k: v.clone()
        for k, v in trainer.accelerator.unwrap_model(trainer.model).state_dict().items()
    }
    reset_accelerate()
    return trainer, results, weights


def test_hooks_are_called_in_order_with_what_happened(small_data, tmp_path):
    recorder = Recorder()
    trainer, results, _ = run(small_data, tmp_path / "out", [recorder])
    kinds = [call[0] for call in recorder.calls]
    assert kinds[0] == "train_begin" and kinds[-1] == "train_end"
    assert kinds.count("step_begin") == kinds.count("step_end") == 4
    steps_begun = [call for call in recorder.calls if call[0] == "step_begin"]
    # Two micro-batches of 8 rows per step, each row once in the epoch (48 rows, 3 steps).
    assert [len(call[2]) for call in steps_begun] == [2, 2, 2, 2]
    first_epoch = [row for call in steps_begun[:3] for batch in call[2] for row in batch]
    assert sorted(first_epoch) == list(range(48))
    assert [c[1] for c in recorder.calls if c[0] == "step_end"] == [1, 2, 3, 4]
    assert [c[1] for c in recorder.calls if c[0] == "checkpoint"] == [2, 4]
    evaluations = [c for c in recorder.calls if c[0] == "evaluate"]
    assert [c[1] for c in evaluations] == [2, 3, 4]  # every 2 steps, and the epoch's end
    logged = [c[1] for c in recorder.calls if c[0] == "log"]
    assert [record["step"] for record in trainer.log_history] == logged
    assert recorder.calls[-1] == ("train_end", 4, results["eval_f1"])
    assert evaluations[-1][2] == results["eval_f1"]


def test_observers_do_not_change_what_is_learned(small_data, tmp_path):
    _, watched, watched_weights = run(small_data, tmp_path / "a", [Recorder(), Recorder()])
    _, alone, alone_weights = run(small_data, tmp_path / "b")
    assert all(torch.equal(watched_weights[k], alone_weights[k]) for k in alone_weights)
    assert watched["eval_f1"] == alone["eval_f1"] and watched["train_loss"] == alone["train_loss"]


def test_what_an_observer_prints_gets_a_line_of_its_own(small_data, tmp_path):
    """The progress bar (drawn on a terminal only) steps aside while observers run: a print is
    never glued to it."""
    import fcntl
    import os
    import struct
    import subprocess
    import sys
    import termios

    script = (
        "import logging\n"
        "from accel_trainer import AccelerateTrainer, Observer, TrainConfig\n"
        "logging.basicConfig(format='%(levelname)s %(name)s: %(message)s', level=logging.INFO)\n"
        "class Print(Observer):\n"
        "    def on_step_end(self, trainer, outcome):\n"
        "        print(f'OBSERVED step {trainer.state.step}')\n"
        "        logging.getLogger('accel_trainer').info(f'LOGGED step {trainer.state.step}')\n"
        f"config = TrainConfig.from_options(train_file={small_data[0]!r}, "
        f"validation_file={small_data[1]!r}, output_dir={str(tmp_path / 'out')!r}, "
        "max_train_steps=4, eval_steps=2)\n"
        "AccelerateTrainer.from_files(config, observers=[Print()]).fit()\n"
    )
    controller, terminal = os.openpty()  # a terminal of 100 columns, as a user runs it
    fcntl.ioctl(terminal, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 100, 0, 0))
    process = subprocess.Popen([sys.executable, "-c", script], stdout=terminal, stderr=terminal)
    os.close(terminal)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 65536)
        except OSError:  # the process closed its side
            break
        if not chunk:
            break
        shown += chunk
    assert process.wait(timeout=300) == 0, shown[-2000:]
    os.close(controller)
    lines = shown.decode("utf-8", errors="replace").replace("\r\n", "\n").split("\n")
    printed = [line for line in lines if "OBSERVED" in line]
    assert len(printed) >= 2 and any("train:" in line for line in lines)
    for line in printed:  # the bar, if drawn on that line, was cleared first
        assert line.split("\r")[-1].startswith("OBSERVED step"), repr(line)
    logged = [line for line in lines if "LOGGED" in line or "INFO accel_trainer" in line]
    assert len(logged) >= 4  # our lines, and the library's own (evaluation every 2 steps)
    for line in logged:  # log lines too: never glued to the bar
        assert line.split("\r")[-1].startswith("INFO accel_trainer"), repr(line)
