"""What a run reports: its setup, log records (log_history.jsonl and Accelerate's trackers), the
loss and token totals behind them, the stopwatch, and the results of the whole run (with the
parameters trained)."""

from __future__ import annotations

import json
import os
from typing import TYPE_CHECKING

from accelerate import Accelerator
from accelerate.logging import get_logger

from accel_trainer.errors import OutputError
from accel_trainer.lora import is_peft_model, lora_summary, parameter_counts
from accel_trainer.storage.commit import write_atomically
from accel_trainer.storage.disk import describe_write_error
from accel_trainer.train.state import TrainState
from accel_trainer.train.telemetry import Stopwatch

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig
    from accel_trainer.train.optim import TrainPlan

logger = get_logger(__name__)
LOG_FILE = "log_history.jsonl"


class RunLog:
    """The run's records, kept in memory, appended to OUTPUT_DIR/log_history.jsonl by the main
    process and sent to the trackers; the totals and seconds live in the TrainState."""

    def __init__(self, accelerator: Accelerator, output_dir: str, report_to: str):
        self.accelerator = accelerator
        self.path = os.path.join(output_dir, LOG_FILE)
        self.report_to = report_to
        self.records: list[dict] = []
        self.clock: Stopwatch | None = None
        self._last_log_seconds = 0.0  # training seconds at the last log record

    def start(self, state: TrainState, resumed: bool, tracked_options: dict) -> None:
        """A fresh log file, or on resume the records the checkpoint had seen (an interrupted
        run may have logged beyond it); trackers started; the clock runs from the state's
        totals."""
        if os.path.exists(self.path) and not os.path.isfile(self.path):
            raise OutputError(
                f"{self.path} is not a file (a folder?): the run log cannot be written there. "
                "Move it away, or choose another --output_dir."
            )
        kept = []
        if resumed and os.path.isfile(self.path) and not os.path.islink(self.path):
            kept = read_log_records(self.path, state.log_records)
        self.records = kept
        if self.accelerator.is_main_process:
            # Replaced, never written through: a link there must not lead the log elsewhere.
            write_atomically(self.path, "".join(json.dumps(record) + "\n" for record in kept))
        if self.report_to != "none":
            scalars = {
                key: value
                for key, value in tracked_options.items()
                if isinstance(value, (int, float, str, bool))
            }
            self.accelerator.init_trackers("runs", config=scalars)
        self.clock = Stopwatch(state.seconds)
        self._last_log_seconds = self.clock.train_seconds()

    def add_totals(self, state: TrainState, totals: tuple[list[float], list[float]]) -> None:
        """Add sums over all processes to the next record's totals (every step's) and to the
        run's (the steps that updated the weights: a skipped step's NaN stays out of
        train_loss)."""
        logged, applied = totals
        state.pending_totals.add(logged)
        state.run_totals.add(applied)

    def take_pending(self, state: TrainState) -> dict:
        """Loss, real tokens per second and padding efficiency since the last log record."""
        pending = state.pending_totals
        state.pending_totals = type(pending)()
        now = self.clock.train_seconds()
        elapsed, self._last_log_seconds = now - self._last_log_seconds, now
        return {
            "loss": pending.mean_loss(),
            "tokens_per_second": round(pending.real_tokens / max(elapsed, 1e-9), 1),
            "padding_efficiency": pending.padding_efficiency(),
        }

    def log(self, record: dict) -> None:
        """Keep one record (it has a "step"), write it, and send it to the trackers."""
        self.records.append(record)
        values = {k: v for k, v in record.items() if k != "step"}
        self.accelerator.log(values, step=record["step"])
        if self.accelerator.is_main_process:
            try:
                with open(self.path, "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
            except OSError as error:
                error.filename = self.path
                raise OutputError(describe_write_error(error, self.path, 0)) from None

    def results(self, state: TrainState, samples: int, memory_mb: float) -> dict:
        """Throughput counts training time alone (evaluation and checkpointing apart), summed
        with the tokens and samples over resumes; `samples` over all processes."""
        totals, seconds = state.run_totals, state.seconds
        runtime = max(seconds["train"], 1e-9)
        return {
            "train_loss": totals.mean_loss(),
            "train_tokens_per_second": round(totals.real_tokens / runtime, 1),
            "train_padding_efficiency": totals.padding_efficiency(),
            "peak_memory_mb": round(memory_mb, 1),
            "train_runtime": round(runtime, 3),
            "evaluation_runtime": round(seconds["eval"], 3),
            "checkpoint_runtime": round(seconds["checkpoint"], 3),
            "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(state.step / runtime, 3),
            "global_step": state.step,
            "optimizer_steps": state.optimizer_steps,
            "nonfinite_steps": state.nonfinite_steps,
        }


def read_log_records(path: str, wanted: int) -> list[dict]:
    """The first `wanted` records of a log_history.jsonl; a torn last line (a crash while
    appending) or any unreadable line ends the log there, with a warning."""
    records = []
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line for line in handle if line.strip()]
    for number, line in enumerate(lines[:wanted], start=1):
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or "step" not in record:
                raise ValueError("not a log record")
        except ValueError:
            torn = "torn (a crash while appending)" if number == len(lines) else "unreadable"
            logger.warning(
                "%s line %d is %s: the log is truncated there (%d of the checkpoint's %d "
                "records kept)",
                path,
                number,
                torn,
                len(records),
                wanted,
            )
            return records
        records.append(record)
    if len(lines) > wanted:
        torn = not is_json_line(lines[-1])
        logger.warning(
            "%s: the %d record(s) logged after the checkpoint was saved are dropped%s",
            path,
            len(lines) - wanted,
            "; the last one is torn (a crash while appending)" if torn else "",
        )
    if len(records) < wanted:
        logger.warning(
            "%s holds %d records, the checkpoint saw %d: the missing ones are not restored",
            path,
            len(records),
            wanted,
        )
    return records


def is_json_line(line: str) -> bool:
    try:
        json.loads(line)
    except ValueError:
        return False
    return True


def log_setup(
    accelerator: Accelerator,
    config: TrainConfig,
    plan: TrainPlan,
    accumulation_steps: int,
    layout_reason: str,
    model,
) -> None:
    """The run's setup, logged once at the start: processes, schedule, layout, parameters."""
    logger.info(
        "world size %d, device %s, distributed type %s, mixed precision %s",
        accelerator.num_processes,
        accelerator.device,
        accelerator.distributed_type.value,
        accelerator.mixed_precision,
    )
    global_batch = (
        config.batching.per_device_train_batch_size * accumulation_steps * accelerator.num_processes
    )
    logger.info(
        "%d optimizer steps (%d per epoch, %d epoch(s)), global batch %d, warmup %d steps, "
        "peak learning rate %g",
        plan.total_steps,
        plan.steps_per_epoch,
        plan.num_epochs,
        global_batch,
        plan.warmup_steps,
        config.resolved_learning_rate(),
    )
    logger.info("batch layout %s", layout_reason)
    report = trained_parameters(model, config.peft.save_adapter_only)
    logger.info("%s", trained_parameters_text(report))


def trained_parameters(model, save_adapter_only: bool) -> dict:
    """How many parameters of the (unwrapped) model train, and what LoRA adapts (LoRA runs
    only)."""
    trainable, total = parameter_counts(model)
    counts = {"trainable_parameters": trainable, "total_parameters": total}
    if not is_peft_model(model):
        return counts
    saved_as = "adapter" if save_adapter_only else "merged"
    return {**counts, "peft": lora_summary(model, saved_as)}


def trained_parameters_text(report: dict) -> str:
    trainable, total = report["trainable_parameters"], report["total_parameters"]
    text = f"trainable parameters: {trainable:,} of {total:,} ({trainable / total:.2%})"
    lora = report.get("peft")
    if lora is None:
        return text
    tokens = lora["trained_token_ids"] or []
    return (
        f"{text}; LoRA r {lora['r']}, alpha {lora['alpha']}, dropout {lora['dropout']} on "
        f"{', '.join(lora['target_modules'])}; trained in full: "
        f"{', '.join(lora['trained_in_full']) or 'no head'} and {len(tokens)} new token "
        "embedding(s)"
    )
