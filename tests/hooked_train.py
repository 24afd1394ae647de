"""`python -m accel_trainer` with test hooks, for runs under `accelerate launch` or started one
process per rank. Environment variables switch the hooks on:

  TRACE_ROWS_DIR       each process appends {"micro_step", "step", "row_ids"} per micro-batch
                       to rank-<process index>.jsonl there
  NAN_RANK, NAN_AT     that process's loss is NaN at its NAN_AT-th forward pass (1-based)
  STEP_DELAY_S         sleep this long after every optimizer step, so a signal lands mid-run
  NO_DROPOUT           dropout off, so that topologies can be compared
  KILL_IN_SAVE_AT_STEP process KILL_RANK (default 1) is SIGKILLed inside the checkpoint save
                       of that step, after its own files are written, before the commit
"""

import json
import os
import signal
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from accel_trainer import commands  # noqa: E402
from accel_trainer.cli import main  # noqa: E402
from accel_trainer.train import Observer  # noqa: E402
from tests.conftest import inject_nan, trace_consumed_rows, without_dropout  # noqa: E402


def hooked_build_trainer(config):
    trainer = build_trainer(config)
    rank = trainer.accelerator.process_index
    if os.environ.get("TRACE_ROWS_DIR"):
        path = os.path.join(os.environ["TRACE_ROWS_DIR"], f"rank-{rank}.jsonl")

        def record(micro_step, step, row_ids):
            with open(path, "a", encoding="utf-8") as handle:
                handle.write(
                    json.dumps({"micro_step": micro_step, "step": step, "row_ids": row_ids})
                )
                handle.write("\n")

        trace_consumed_rows(trainer, record)
    if os.environ.get("NAN_RANK") == str(rank):
        inject_nan(trainer, {int(os.environ["NAN_AT"])})
    if os.environ.get("NO_DROPOUT"):
        without_dropout(trainer)
    if os.environ.get("KILL_IN_SAVE_AT_STEP"):
        kill_inside_save(trainer, int(os.environ["KILL_IN_SAVE_AT_STEP"]))
    delay = float(os.environ.get("STEP_DELAY_S", "0"))
    if delay:

        class SlowSteps(Observer):
            def on_step_end(self, trainer, outcome):
                time.sleep(delay)

        trainer.add_observer(SlowSteps())
    return trainer


def kill_inside_save(trainer, step: int) -> None:
    accelerator = trainer.accelerator
    save_state = accelerator.save_state

    def save_then_die(folder, *args, **kwargs):
        save_state(folder, *args, **kwargs)
        rank = int(os.environ.get("KILL_RANK", "1"))
        if trainer.state.step == step and accelerator.process_index == rank:
            os.kill(os.getpid(), signal.SIGKILL)

    accelerator.save_state = save_then_die


build_trainer = commands.build_trainer
commands.build_trainer = hooked_build_trainer

if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
