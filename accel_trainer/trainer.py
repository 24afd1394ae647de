"""AccelerateTrainer: one training loop for every task, on one process or many, CPU or GPU."""

from __future__ import annotations

import hashlib
import json
import math
import os
import resource
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import (
    DataLoaderConfiguration,
    GradientAccumulationPlugin,
    InitProcessGroupKwargs,
    set_seed,
)
from torch.utils.data import DataLoader
from tqdm.auto import tqdm

from accel_trainer.checkpoint import (
    capture_rng,
    commit_final_model,
    committed_checkpoints,
    describe_write_error,
    discard,
    lock_output_dir,
    raise_if_any_failed,
    read_manifest,
    release_output_dir,
    remove_torn,
    restore_rng,
    rotate,
    save_checkpoint,
    write_atomically,
)
from accel_trainer.config import TrainConfig
from accel_trainer.errors import (
    ConfigError,
    Diverged,
    InputError,
    OutputError,
    PeerLost,
    Preempted,
    first_line,
)
from accel_trainer.optim import build_optimizer, build_scheduler, warmup_steps
from accel_trainer.resume import (
    ResumePoint,
    load_rng_state,
    options_hash,
    plan_resume,
    topology,
    training_options,
)
from accel_trainer.sampling import LengthGroupedSampler, TokenBudgetBatchSampler
from accel_trainer.state import TrainState
from accel_trainer.tasks.base import IGNORE_INDEX, META_KEYS, Task
from accel_trainer.telemetry import Stopwatch

if TYPE_CHECKING:
    from datasets import Dataset

logger = get_logger(__name__)
LABEL_KEYS = ("labels", "label")


def create_accelerator(config: TrainConfig) -> Accelerator:
    """An Accelerator on CUDA when present, else CPU, that really spans the launched world."""
    # CPU whenever CUDA is absent: without cpu=True a multi-process launch on a CPU-only machine
    # starts N separate world-size-1 runs instead of one gloo process group.
    use_cpu = config.runtime.cpu or not torch.cuda.is_available()
    check_launcher()
    accumulation = config.batching.resolved_accumulation_steps(
        int(os.environ.get("WORLD_SIZE", "1"))
    )
    try:
        accelerator = new_accelerator(config, use_cpu, accumulation)
    except ValueError as error:  # Accelerate's checks of the launcher's environment and options
        if int(os.environ.get("WORLD_SIZE", "1")) > 1:
            raise ConfigError(
                f"the distributed environment is incomplete: {error}. Start multi-process runs "
                "with `accelerate launch` or torchrun, which set RANK, WORLD_SIZE, MASTER_ADDR "
                "and MASTER_PORT."
            ) from None
        raise ConfigError(f"Accelerate refused the settings: {error}") from None
    check_world_size(accelerator)
    sharding = [name for name in ("FSDP", "DEEPSPEED") if env_flag(f"ACCELERATE_USE_{name}")]
    if sharding and accelerator.distributed_type.value not in sharding:
        logger.warning(
            "the accelerate config asks for %s, which needs GPUs: running plain data parallel "
            "(%s) on the CPU instead",
            sharding[0],
            accelerator.distributed_type.value,
        )
    return accelerator


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "y", "on")


def new_accelerator(config: TrainConfig, use_cpu: bool, accumulation: int) -> Accelerator:
    return Accelerator(
        cpu=use_cpu,
        mixed_precision=config.runtime.mixed_precision,
        # The trainer cuts the data into accumulation windows itself and tells Accelerate where
        # each one ends (see _train_window), so the end of the data loader must not end one.
        gradient_accumulation_plugin=GradientAccumulationPlugin(
            num_steps=accumulation, sync_with_dataloader=False
        ),
        # We step the scheduler ourselves, once per optimizer step: Accelerate would otherwise
        # step it once per process, decaying the learning rate N times too fast.
        step_scheduler_with_optimizer=False,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[
            InitProcessGroupKwargs(timeout=timedelta(seconds=config.runtime.ddp_timeout))
        ],
        log_with=None if config.logging.report_to == "none" else config.logging.report_to,
        project_dir=config.resolved_output_dir(),
    )


def check_launcher() -> None:
    """Stop when `accelerate launch` was asked for several processes but started one."""
    # Its simple launcher (--cpu or a MULTI_CPU config) sets the rendezvous address for
    # --num_processes > 1 but starts a single process, without RANK or WORLD_SIZE.
    simple_launcher = "ACCELERATE_MIXED_PRECISION" in os.environ and "KMP_BLOCKTIME" in os.environ
    if simple_launcher and "MASTER_PORT" in os.environ and "WORLD_SIZE" not in os.environ:
        raise ConfigError(
            "`accelerate launch` was asked for several processes but started only this one: "
            "with --cpu or a MULTI_CPU config it starts one process (more need mpirun). Use "
            "`accelerate launch --multi_gpu --num_processes N` (the trainer runs on the CPU when "
            "there is no GPU) or accelerate_configs/cpu_2proc.yaml; for one process, drop "
            "--num_processes or unset MASTER_PORT."
        )


def check_world_size(accelerator: Accelerator) -> None:
    """Stop when the launcher meant more processes than joined the process group."""
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if accelerator.num_processes != launched:
        raise ConfigError(
            f"the process group has {accelerator.num_processes} process(es) but the launcher "
            f"started WORLD_SIZE={launched}: each process would train alone. Launch with "
            "`accelerate launch --multi_gpu --num_processes N` (on CPU too) or torchrun, and do "
            "not set WORLD_SIZE by hand."
        )


def check_same_on_every_process(accelerator: Accelerator, parts: dict[str, Any]) -> None:
    """Stop every process, with one message, when they disagree on any of `parts` (options,
    labels, data): one all-gather of a short hash of each."""
    if accelerator.num_processes == 1:
        return
    digests = [short_hash(value) for value in parts.values()]
    local = torch.tensor(digests, dtype=torch.int64, device=accelerator.device)
    everyone = accelerator.gather(local).view(accelerator.num_processes, len(parts)).tolist()
    disagreements = []
    for column, name in enumerate(parts):
        others = [rank for rank, row in enumerate(everyone) if row[column] != everyone[0][column]]
        if others:
            disagreements.append(f"process(es) {others} see other {name} than process 0")
    if disagreements:
        accelerator.wait_for_everyone()  # every process has seen the others' hashes
        raise ConfigError(
            "the processes of this run disagree: "
            + "; ".join(disagreements)
            + ". Give every process the same command line and config file, and the same data "
            "files (on a file system every node sees, with the same contents)."
        )


# How gloo and NCCL report a peer that is gone or silent.
LOST_PEER_MARKERS = (
    "connection closed by peer",
    "connection reset by peer",
    "timed out",
    "nccl communicator was aborted",
    "broken pipe",
)


def is_lost_peer(error: RuntimeError) -> bool:
    if isinstance(error, torch.distributed.DistError):
        return True
    message = str(error).lower()
    return any(marker in message for marker in LOST_PEER_MARKERS)


def short_hash(value: Any) -> int:
    """A signed 64-bit hash of a JSON-able value, the same in every process."""
    text = json.dumps(value, sort_keys=True, default=str).encode()
    return int.from_bytes(hashlib.sha256(text).digest()[:8], "big", signed=True)


def label_key(batch: dict) -> str:
    """'labels' (token tasks) or 'label' (sequence tasks), whichever the batch carries."""
    for key in LABEL_KEYS:
        if key in batch:
            return key
    raise InputError(
        f"the batch has neither 'labels' nor 'label': got keys {sorted(batch)}. "
        "Tokenize the data so that each example carries its gold label under one of them."
    )


def model_inputs(batch: dict, with_labels: bool = True) -> dict:
    """The batch as model keyword arguments: HF models take the gold labels as `labels`;
    without them the model skips its own (per-batch mean) loss."""
    inputs = {key: value for key, value in batch.items() if key not in META_KEYS}
    gold = inputs.pop("label", None)
    if gold is not None:
        inputs["labels"] = gold
    if not with_labels:
        inputs.pop("labels", None)
    return inputs


def summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the labelled positions (tokens or examples), in float32."""
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


@dataclass
class TrainPlan:
    """How long training runs, in optimizer steps, after sharding and accumulation."""

    steps_per_epoch: int
    total_steps: int
    num_epochs: int
    warmup_steps: int


class AccelerateTrainer:
    """Fine-tunes a transformers model for a task, through one `accelerate.Accelerator`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        config: TrainConfig,
        task: Task,
        train_data: Dataset | DataLoader | None = None,
        eval_data: Dataset | DataLoader | None = None,
        accelerator: Accelerator | None = None,
        extra_results: dict | None = None,
        resume: ResumePoint | None = None,
        identity: dict | None = None,
        write_extras: Callable[[str, dict], None] | None = None,
    ):
        """`resume`: the checkpoint plan_resume chose (else fit() chooses); `identity`: what
        a resumed run must share with this one (default: the labels); `write_extras(folder,
        results)` adds files (a model card) to the final model folder before it is committed."""
        for data in (train_data, eval_data):
            check_label_column(data)
        self.config = config
        self.output_dir = config.resolved_output_dir()
        self.task = task
        self.tokenizer = tokenizer
        self.accelerator = accelerator or create_accelerator(config)
        # Micro-batches per optimizer step, given or derived from --global_batch_size.
        self.accumulation_steps = self.accelerator.gradient_accumulation_steps
        if self.accumulation_steps > 1 and self.accelerator.gradient_state.sync_with_dataloader:
            raise ConfigError(
                "the Accelerator ends accumulation windows at the end of the data loader, which "
                "the trainer's own windows cannot follow: build it with create_accelerator(config)"
                " or GradientAccumulationPlugin(sync_with_dataloader=False)."
            )
        self.extra_results = extra_results or {}
        self.state = TrainState()
        self.log_history: list[dict] = []
        self.id2label = {int(i): label for i, label in model.config.id2label.items()}
        self.resume_point = resume
        self.identity = identity or {"labels": [self.id2label[i] for i in sorted(self.id2label)]}
        self.write_extras = write_extras
        set_seed(config.runtime.seed)
        self._train_sampler = None  # a token-budget batch sampler, whose epoch we set ourselves
        train_loader = self._dataloader(
            train_data, config.batching.per_device_train_batch_size, True
        )
        eval_loader = self._dataloader(eval_data, config.batching.per_device_eval_batch_size, False)
        self.model, self.train_dataloader, self.eval_dataloader = self.accelerator.prepare(
            model, train_loader, eval_loader
        )
        self.optimizer = None
        self.lr_scheduler = None
        self._window_totals = torch.zeros(4, device=self.accelerator.device)  # this rank only
        self.clock = Stopwatch(self.state.seconds)
        self._last_log_seconds = 0.0  # training seconds at the last log record
        self._rng_to_restore: dict | None = None
        self._step_skipped = False
        self._last_checkpoint_step = -1
        self.output_lock = None  # held by the main process while it owns output_dir
        self._progress: tqdm | None = None

    def _dataloader(self, data, batch_size: int, shuffle: bool) -> DataLoader | None:
        if data is None or isinstance(data, DataLoader):
            return data
        if "row_id" not in data.column_names:
            # Lets gathered predictions be put back in dataset order on any number of processes,
            # and names the examples each training step consumed.
            data = data.add_column("row_id", list(range(len(data))))
        lengths = [len(ids) for ids in data["input_ids"]]
        loader_options = {
            "collate_fn": self.task.collator(self.tokenizer),
            "pin_memory": self.accelerator.device.type == "cuda",
        }
        if not shuffle:
            # Longest first: similar lengths share a batch, and a batch too large for memory
            # fails at once. Gathered rows are put back in dataset order by row_id.
            order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
            return DataLoader(data, batch_size=batch_size, sampler=order, **loader_options)
        if self.config.batching.max_tokens_per_batch:
            batches = TokenBudgetBatchSampler(
                lengths, self.config.batching.max_tokens_per_batch, self.config.runtime.seed
            )
            self._train_sampler = batches
            return DataLoader(data, batch_sampler=batches, **loader_options)
        sampler = None
        if self.config.batching.group_by_length:
            global_batch = batch_size * self.accelerator.num_processes * self.accumulation_steps
            sampler = LengthGroupedSampler(lengths, global_batch, self.config.runtime.seed)
        return DataLoader(
            data, batch_size=batch_size, shuffle=sampler is None, sampler=sampler, **loader_options
        )

    def fit(self) -> dict:
        """Train, evaluate at each epoch end (and every eval_steps), save; return the results."""
        if self.train_dataloader is None:
            raise ConfigError("fit() needs training data: got train_data=None. Pass a dataset.")
        if self.output_lock is None and self.accelerator.is_main_process:
            self.output_lock = lock_output_dir(self.output_dir)
        previous_handlers = self._listen_for_preemption()
        try:
            return self._fit()
        except RuntimeError as error:
            if self.accelerator.num_processes > 1 and is_lost_peer(error):
                raise PeerLost(
                    f"lost contact with another process of this run: {first_line(error)}. A "
                    f"process or node died or hung; the others stop within --ddp_timeout "
                    f"({self.config.runtime.ddp_timeout} s). Committed checkpoints in "
                    f"{self.output_dir} are intact: resume with --resume_from_checkpoint auto."
                ) from error
            raise
        finally:
            if self._progress is not None:
                self._progress.close()  # so that an error message starts on a line of its own
            for signum, handler in previous_handlers.items():
                signal.signal(signum, handler)
            release_output_dir(self.output_lock)
            self.output_lock = None

    def _fit(self) -> dict:
        plan = self._plan()
        self._build_optimizer_and_scheduler(plan)
        self._log_setup(plan)
        resumed = self._resume(plan)
        self._start_log_file(resumed)
        self._start_trackers()
        progress = self._progress = tqdm(
            total=plan.total_steps,
            initial=self.state.step,
            desc="train",
            unit="step",
            disable=not self.accelerator.is_main_process,
        )
        eval_metrics: dict = {}
        self.clock = Stopwatch(self.state.seconds)  # the resumed state's totals, if any
        self._last_log_seconds = self.clock.train_seconds()
        self.model.train()
        for epoch in range(self.state.epoch, plan.num_epochs):
            if epoch != self.state.epoch:  # a new epoch, not the one a checkpoint left off in
                self.state.epoch, self.state.micro_step_in_epoch = epoch, 0
            self.train_dataloader.set_epoch(epoch)
            if self._train_sampler is not None:
                self._train_sampler.set_epoch(epoch)
            for window in self._windows(self._epoch_batches(plan)):
                if self._rng_to_restore is not None:  # resumed: continue the saved RNG stream
                    restore_rng(self._rng_to_restore)
                    self._rng_to_restore = None
                grad_norm = self._train_window(window)
                self._finish_optimizer_step(grad_norm, plan, progress)
                if (
                    self.config.evaluation.eval_steps
                    and self.state.step % self.config.evaluation.eval_steps == 0
                ):
                    eval_metrics = self._evaluate_and_log()
                stop = self._preemption_agreed()
                if stop or self._checkpoint_due("step"):
                    self.save_checkpoint()
                if stop:
                    raise Preempted(self.state.step)
                if self._finished(plan):
                    break
            if self.state.last_eval_step != self.state.step:
                eval_metrics = self._evaluate_and_log()
            if self._checkpoint_due("epoch"):
                self.save_checkpoint()
            if self._finished(plan):
                break
        progress.close()
        self.clock.stop()
        if not eval_metrics and self.state.last_eval_step == self.state.step:
            eval_metrics = self.evaluate()  # evaluated before the checkpoint this run resumed
        if self.config.evaluation.load_best_model_at_end:
            eval_metrics = self._load_best_model(eval_metrics)
        results = self._results(eval_metrics)
        self.save_model(self.output_dir, results)
        self.accelerator.end_training()
        return results

    def _listen_for_preemption(self) -> dict:
        """SIGTERM (sent by torchrun and schedulers) and SIGUSR1 (SLURM's --signal) ask the run
        to stop at the next optimizer step, after a committed checkpoint. Returns the handlers
        this replaced."""
        self._stop_requested = False

        def request_stop(signum, frame):
            self._stop_requested = True

        if threading.current_thread() is not threading.main_thread():
            return {}
        return {
            signum: signal.signal(signum, request_stop)
            for signum in (signal.SIGTERM, signal.SIGUSR1)
        }

    def _preemption_agreed(self) -> bool:
        """Whether any process was asked to stop; all processes get the same answer, so they
        stop at the same optimizer step (one tiny all-reduce per step)."""
        flag = torch.tensor(float(self._stop_requested), device=self.accelerator.device)
        return bool(self.accelerator.reduce(flag, reduction="max").item())

    def _epoch_batches(self, plan: TrainPlan):
        """This epoch's batches, less the micro-batches a checkpoint says were consumed."""
        skip = self.state.micro_step_in_epoch
        if self._finished(plan):
            return []  # resumed from the last step's checkpoint: only the evaluation is left
        if skip == 0:
            return self.train_dataloader
        if skip >= len(self.train_dataloader):
            return []  # the checkpoint was taken at the end of this epoch
        return self.accelerator.skip_first_batches(self.train_dataloader, skip)

    def _finished(self, plan: TrainPlan) -> bool:
        """All optimizer steps done, or early stopping's patience ran out."""
        patience = self.config.evaluation.early_stopping_patience
        stopped_early = patience and self.state.evaluations_without_improvement >= patience
        return self.state.step >= plan.total_steps or bool(stopped_early)

    def _track_best(self, metrics: dict) -> None:
        """Keep the best value of --metric_for_best_model, and count evaluations without one."""
        name = self.config.evaluation.metric_for_best_model
        if name is None:
            return
        if name not in metrics:
            raise ConfigError(
                f"--metric_for_best_model is not an eval metric of this task: got {name!r}, "
                f"metrics {sorted(metrics)}."
            )
        value, best = metrics[name], self.state.best_metric
        lower_is_better = name.endswith("loss")
        improved = best is None or (value < best if lower_is_better else value > best)
        if improved:
            self.state.best_metric, self.state.best_step = value, self.state.step
            self.state.evaluations_without_improvement = 0
        else:
            self.state.evaluations_without_improvement += 1

    def _best_results(self) -> dict:
        if self.config.evaluation.metric_for_best_model is None:
            return {}
        patience = self.config.evaluation.early_stopping_patience
        return {
            "best_metric": self.state.best_metric,
            "best_step": self.state.best_step,
            "stopped_early": bool(
                patience and self.state.evaluations_without_improvement >= patience
            ),
        }

    def _best_checkpoint(self) -> str:
        return os.path.join(self.output_dir, f"checkpoint-{self.state.best_step}")

    def _load_best_model(self, last_metrics: dict) -> dict:
        """Put the weights of the best evaluation back into the model; return its metrics."""
        best_step = self.state.best_step
        if best_step < 0:
            logger.warning("--load_best_model_at_end: no evaluation ran; keeping the last model")
            return last_metrics
        if best_step == self.state.step:
            return last_metrics
        path = self._best_checkpoint()
        if read_manifest(path) is None:
            raise InputError(
                f"--load_best_model_at_end: the best checkpoint {path} (step {best_step}) is "
                "missing or torn. The last committed checkpoint is intact; resume from it "
                "without --load_best_model_at_end to save the last model."
            )
        # Loads optimizer, scheduler and RNG too: harmless, training is over.
        self.accelerator.load_state(path)
        logger.info(
            "loaded the best model (%s %s at step %d) from %s",
            self.config.evaluation.metric_for_best_model,
            self.state.best_metric,
            best_step,
            path,
        )
        name = self.config.evaluation.metric_for_best_model
        records = [r for r in self.log_history if r["step"] == best_step and name in r]
        if not records:
            return self.evaluate()
        return {k: v for k, v in records[-1].items() if k.startswith("eval_")}

    def _checkpoint_due(self, moment: str) -> bool:
        if self._last_checkpoint_step == self.state.step:
            return False
        if (
            self.config.evaluation.load_best_model_at_end
            and self.state.best_step == self.state.step
        ):
            return True  # the best model so far must be on disk to be loaded at the end
        every = self.config.checkpointing.checkpointing_steps
        if every.epoch:
            return moment == "epoch"
        return moment == "step" and every.steps is not None and self.state.step % every.steps == 0

    def save_checkpoint(self) -> str:
        """Commit the full training state as OUTPUT_DIR/checkpoint-<step>, then rotate."""
        with self.clock.paused("checkpoint"):
            return self._save_checkpoint()

    def _save_checkpoint(self) -> str:
        self._flush_window_totals()  # so the state holds every loss seen so far
        self.state.log_records = len(self.log_history)
        started = time.perf_counter()
        path = save_checkpoint(
            self.accelerator,
            self.output_dir,
            self.state.step,
            asdict(self.state),
            estimate=self._checkpoint_bytes(),
        )
        self._last_checkpoint_step = self.state.step
        if self.accelerator.is_main_process:
            rotate(
                self.output_dir,
                self.config.checkpointing.save_total_limit,
                protect={path, self._best_checkpoint()},
            )
            size = sum(f["size"] for f in read_manifest(path)["files"].values())
            logger.info(
                "step %d: committed %s (%.1f MB) in %.2f s",
                self.state.step,
                path,
                size / 1e6,
                time.perf_counter() - started,
            )
        self.accelerator.wait_for_everyone()
        return path

    def _check_position(self, path: str, plan: TrainPlan, batches: int) -> None:
        """Refuse a saved position this run cannot have reached (a damaged or edited state)."""
        state = self.state
        if (
            state.step > plan.total_steps
            or state.epoch > plan.num_epochs
            or (state.micro_step_in_epoch > batches)
        ):
            raise ConfigError(
                f"--resume_from_checkpoint {path} has a position this run never reaches: step "
                f"{state.step} of {plan.total_steps}, epoch {state.epoch} of {plan.num_epochs}, "
                f"micro-batch {state.micro_step_in_epoch} of {batches}. Give another checkpoint."
            )

    def _resume(self, plan: TrainPlan) -> bool:
        """Load the checkpoint --resume_from_checkpoint asks for; False when starting fresh."""
        accelerator = self.accelerator
        self.state.world_size = accelerator.num_processes
        self.state.per_device_train_batch_size = self.config.batching.per_device_train_batch_size
        self.state.gradient_accumulation_steps = self.accumulation_steps
        self.state.config_hash = options_hash(self.config)
        self.state.options = training_options(self.config)
        self.state.identity = self.identity
        if self.resume_point is None and self.config.checkpointing.resume_from_checkpoint:
            self.resume_point = plan_resume(accelerator, self.config, self.identity)
        if self.resume_point is None:
            if accelerator.is_main_process:
                remove_torn(self.output_dir)
                if self.config.overwrite_output_dir:
                    # An earlier run's, replaced as --overwrite_output_dir says.
                    for _, stale in committed_checkpoints(self.output_dir):
                        discard(stale)
            accelerator.wait_for_everyone()
            return False
        path, saved = self.resume_point.path, self.resume_point.saved
        has_rng = load_rng_state(path, accelerator.process_index) is not None
        try:
            accelerator.load_state(path)
        except (RuntimeError, ValueError, KeyError, OSError) as error:
            raise ConfigError(
                f"--resume_from_checkpoint {path} does not fit this model: "
                f"{state_dict_problem(error)}. Resume with the model and data of that run."
            ) from None
        self.state = TrainState.from_saved(saved)  # checked by plan_resume
        self.state.options, self.state.identity = training_options(self.config), self.identity
        if topology(saved) != self._current_topology():
            self._move_to_current_topology(saved)
        if not has_rng:
            # A process the checkpoint did not have: a fresh, reproducible stream of its own.
            seed = (self.config.runtime.seed + 1_000_003 * self.state.step) % (2**32 - 2**16)
            set_seed(seed, device_specific=True)
        self._last_checkpoint_step = self.state.step
        batches = len(self.train_dataloader)
        self._check_position(path, plan, batches)
        if self.state.micro_step_in_epoch >= batches and self.state.last_eval_step == saved["step"]:
            self.state.epoch, self.state.micro_step_in_epoch = self.state.epoch + 1, 0
        if 0 < self.state.micro_step_in_epoch < batches:
            # The next batch must see the saved RNG, not what starting the data iterator draws.
            self._rng_to_restore = capture_rng()
        logger.info(
            "resumed from %s at step %d (epoch %d, micro-batch %d)",
            path,
            self.state.step,
            self.state.epoch,
            self.state.micro_step_in_epoch,
        )
        return True

    def _current_topology(self) -> tuple[int, int, int]:
        return (
            self.accelerator.num_processes,
            self.config.batching.per_device_train_batch_size,
            self.accumulation_steps,
        )

    def _move_to_current_topology(self, saved: dict) -> None:
        """Keep the data position, in examples, when the global batch is split differently.
        Checkpoints fall on optimizer steps, so the position is a whole number of global
        batches, or the end of the epoch."""
        world_size, batch, accumulation = topology(saved)
        examples = len(self.train_dataloader.dataset)
        saved_batches = math.ceil(math.ceil(examples / batch) / world_size)
        if self.state.micro_step_in_epoch >= saved_batches:
            self.state.micro_step_in_epoch = len(self.train_dataloader)
        else:
            steps_into_epoch = self.state.micro_step_in_epoch // accumulation
            self.state.micro_step_in_epoch = steps_into_epoch * self.accumulation_steps
        (
            self.state.world_size,
            self.state.per_device_train_batch_size,
            self.state.gradient_accumulation_steps,
        ) = self._current_topology()

    def _checkpoint_bytes(self) -> int:
        """About what a checkpoint takes on disk: float32 weights and AdamW's two moments."""
        model = self.accelerator.unwrap_model(self.model)
        return 3 * sum(p.numel() * 4 for p in model.parameters())

    def _plan(self) -> TrainPlan:
        config = self.config
        accumulation = self.accumulation_steps
        steps_per_epoch = math.ceil(len(self.train_dataloader) / accumulation)
        if config.optim.max_train_steps > 0:
            total_steps = config.optim.max_train_steps
        else:
            total_steps = max(1, math.ceil(config.optim.num_train_epochs * steps_per_epoch))
        num_epochs = math.ceil(total_steps / steps_per_epoch)
        warmup = warmup_steps(total_steps, config.optim.warmup_ratio, config.optim.num_warmup_steps)
        return TrainPlan(steps_per_epoch, total_steps, num_epochs, warmup)

    def _build_optimizer_and_scheduler(self, plan: TrainPlan) -> None:
        config = self.config
        optimizer = build_optimizer(
            self.accelerator.unwrap_model(self.model),
            config.resolved_learning_rate(),
            config.optim.weight_decay,
            betas=(config.optim.adam_beta1, config.optim.adam_beta2),
            eps=config.optim.adam_epsilon,
        )
        scheduler = build_scheduler(
            optimizer, config.optim.lr_scheduler_type, plan.total_steps, plan.warmup_steps
        )
        self.optimizer, self.lr_scheduler = self.accelerator.prepare(optimizer, scheduler)

    def _log_setup(self, plan: TrainPlan) -> None:
        accelerator = self.accelerator
        logger.info(
            "world size %d, device %s, distributed type %s, mixed precision %s",
            accelerator.num_processes,
            accelerator.device,
            accelerator.distributed_type.value,
            accelerator.mixed_precision,
        )
        global_batch = (
            self.config.batching.per_device_train_batch_size
            * self.accumulation_steps
            * accelerator.num_processes
        )
        logger.info(
            "%d optimizer steps (%d per epoch, %d epoch(s)), global batch %d, warmup %d steps, "
            "peak learning rate %g",
            plan.total_steps,
            plan.steps_per_epoch,
            plan.num_epochs,
            global_batch,
            plan.warmup_steps,
            self.config.resolved_learning_rate(),
        )

    def _log_path(self) -> str:
        return os.path.join(self.output_dir, "log_history.jsonl")

    def _start_log_file(self, resumed: bool) -> None:
        """A fresh log_history.jsonl; on resume, the records the checkpoint had seen (an
        interrupted run may have logged beyond it)."""
        path = self._log_path()
        if os.path.exists(path) and not os.path.isfile(path):
            raise OutputError(
                f"{path} is not a file (a folder?): the run log cannot be written there. Move "
                "it away, or choose another --output_dir."
            )
        kept = []
        if resumed and os.path.isfile(path) and not os.path.islink(path):
            kept = read_log_records(path, self.state.log_records)
        self.log_history = kept
        if self.accelerator.is_main_process:
            # Replaced, never written through: a link there must not lead the log elsewhere.
            write_atomically(path, "".join(json.dumps(record) + "\n" for record in kept))

    def _start_trackers(self) -> None:
        if self.config.logging.report_to == "none":
            return
        scalars = {
            key: value
            for key, value in self.config.to_dict().items()
            if isinstance(value, (int, float, str, bool))
        }
        self.accelerator.init_trackers("runs", config=scalars)

    def _windows(self, batches):
        """The micro-batches of each optimizer step, as lists; an epoch's last may be short."""
        window = []
        for batch in batches:
            window.append(batch)
            if len(window) == self.accumulation_steps:
                yield window
                window = []
        if window:
            yield window

    def _train_window(self, window: list[dict]) -> torch.Tensor:
        """One optimizer step over a window of micro-batches; returns the gradient norm."""
        accelerator = self.accelerator
        key = label_key(window[0])
        labelled = [(batch[key] != IGNORE_INDEX).sum() for batch in window]
        window_labelled = None
        if self.config.batching.loss_normalization == "tokens":
            # Counted before the first backward: every process must divide by the same total.
            window_labelled = accelerator.reduce(torch.stack(labelled).sum(), "sum")
        # Accelerate syncs gradients, and lets the optimizer step, when its micro-batch count
        # reaches a multiple of the accumulation steps: end this window exactly at its end.
        accelerator.step = self.accumulation_steps - len(window)
        for batch, count in zip(window, labelled, strict=True):
            grad_norm = self._micro_step(batch, key, count, window_labelled)
        return grad_norm

    def _scaled_loss(self, loss_sum, labelled, window_labelled) -> torch.Tensor:
        """The loss to back-propagate so that the averaged, accumulated gradient is the one
        --loss_normalization asks for."""
        if window_labelled is None:  # batch: this micro-batch's mean, as transformers does
            return loss_sum / labelled.clamp(min=1)
        # tokens: Accelerate divides by the accumulation steps, data parallelism averages over
        # processes; undo both so that the gradient is the sum over the global batch / its count.
        scale = self.accumulation_steps * self.accelerator.num_processes
        return loss_sum * scale / window_labelled.clamp(min=1)

    def _micro_step(self, batch, key, labelled, window_labelled) -> torch.Tensor | None:
        """One forward/backward; at the end of an accumulation window, clip and step."""
        accelerator = self.accelerator
        grad_norm = None
        self._step_skipped = False
        with accelerator.accumulate(self.model):
            logits = self.model(**model_inputs(batch, with_labels=False)).logits
            loss_sum = summed_cross_entropy(logits, batch[key])
            accelerator.backward(self._scaled_loss(loss_sum, labelled, window_labelled))
            if accelerator.sync_gradients:
                # max_grad_norm 0: the norm is only measured (an infinite threshold).
                grad_norm = accelerator.clip_grad_norm_(
                    self.model.parameters(), self.config.optim.max_grad_norm or float("inf")
                )
                # The gradients are averaged over processes by now, so every rank sees the same
                # norm: a NaN or inf on any rank skips this step on all of them. (fp16's
                # gradient scaler handles its own overflows.)
                finite = bool(torch.isfinite(grad_norm))
                self._step_skipped = not finite and accelerator.scaler is None
            if not self._step_skipped:
                self.optimizer.step()
            self.optimizer.zero_grad()
        # Logged: the summed loss and its labelled count (tokens), or the mean and 1 (batch).
        if window_labelled is None:
            loss_total, loss_count = loss_sum.detach() / labelled.clamp(min=1), 1.0
        else:
            loss_total, loss_count = loss_sum.detach(), labelled.float()
        mask = batch.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(batch["input_ids"])
        self._window_totals += torch.stack(
            [
                torch.as_tensor(value, dtype=torch.float32, device=self._window_totals.device)
                for value in (loss_total, loss_count, mask.sum(), mask.numel())
            ]
        )
        self.state.micro_step += 1
        self.state.micro_step_in_epoch += 1
        self.state.samples_seen += batch[key].shape[0]
        return grad_norm

    def _finish_optimizer_step(self, grad_norm, plan: TrainPlan, progress: tqdm) -> None:
        learning_rate = self.optimizer.param_groups[0]["lr"]  # the rate this step used
        if self._step_skipped:
            self._count_nonfinite_step(grad_norm)
        elif not self.accelerator.optimizer_step_was_skipped:  # fp16 overflow
            self.state.consecutive_nonfinite = 0
            self.lr_scheduler.step()
        self.state.step += 1
        progress.update(1)
        if (
            self.state.step % self.config.logging.logging_steps == 0
            or self.state.step == plan.total_steps
        ):
            record = {
                "step": self.state.step,
                "epoch": round(self._epoch_progress(), 4),
                **self._take_logged_totals(),
                "learning_rate": learning_rate,
            }
            if grad_norm is not None:
                record["grad_norm"] = float(grad_norm)
            record["peak_memory_mb"] = round(peak_memory_mb(self.accelerator.device), 1)
            self._log(record)
            progress.set_postfix(
                epoch=f"{record['epoch']:.2f}",
                loss=f"{record['loss']:.4f}",
                lr=f"{learning_rate:.2e}",
            )

    def _count_nonfinite_step(self, grad_norm) -> None:
        """A skipped step (NaN/inf loss or gradient): count it, log it, stop when they repeat."""
        self.state.nonfinite_steps += 1
        self.state.consecutive_nonfinite += 1
        step = self.state.step + 1
        logger.warning(
            "step %d skipped: non-finite gradient norm %s (%d skipped in all, %d in a row); "
            "weights, optimizer and learning rate unchanged",
            step,
            float(grad_norm),
            self.state.nonfinite_steps,
            self.state.consecutive_nonfinite,
        )
        self._log({"step": step, "nonfinite_steps": self.state.nonfinite_steps})
        if self.state.consecutive_nonfinite > self.config.optim.max_nonfinite_steps:
            raise Diverged(
                f"training diverged: {self.state.consecutive_nonfinite} optimizer steps in a row "
                f"up to step {step} had a NaN or inf loss or gradient (--max_nonfinite_steps "
                f"{self.config.optim.max_nonfinite_steps}). The last committed checkpoint in "
                f"{self.output_dir} is intact: lower the learning rate or check the data."
            )

    def _epoch_progress(self) -> float:
        return self.state.epoch + self.state.micro_step_in_epoch / len(self.train_dataloader)

    def _flush_window_totals(self) -> None:
        """Add this rank's loss and token counts, summed over all processes, to the run's and
        the next log record's totals; one all-reduce."""
        totals = self.accelerator.reduce(self._window_totals, reduction="sum").tolist()
        self._window_totals.zero_()
        for kept in (self.state.run_totals, self.state.pending_totals):
            for index, value in enumerate(totals):
                kept[index] += value

    def _take_logged_totals(self) -> dict:
        """Loss (over all processes), real tokens per second and padding efficiency since the
        last log record."""
        self._flush_window_totals()
        loss_sum, loss_count, real, padded = self.state.pending_totals
        self.state.pending_totals = [0.0] * 4
        now = self.clock.train_seconds()
        elapsed, self._last_log_seconds = now - self._last_log_seconds, now
        return {
            "loss": loss_sum / max(loss_count, 1),
            "tokens_per_second": round(real / max(elapsed, 1e-9), 1),
            "padding_efficiency": round(real / max(padded, 1), 4),
        }

    def _log(self, record: dict) -> None:
        self.log_history.append(record)
        values = {k: v for k, v in record.items() if k != "step"}
        self.accelerator.log(values, step=record["step"])
        if self.accelerator.is_main_process:
            try:
                with open(self._log_path(), "a", encoding="utf-8") as handle:
                    handle.write(json.dumps(record) + "\n")
            except OSError as error:
                error.filename = self._log_path()
                raise OutputError(describe_write_error(error, self._log_path(), 0)) from None

    def _evaluate_and_log(self) -> dict:
        with self.clock.paused("eval"):
            metrics = self.evaluate()
        self.state.last_eval_step = self.state.step
        if metrics:
            self._track_best(metrics)
            self._log(
                {"step": self.state.step, "epoch": round(self._epoch_progress(), 4), **metrics}
            )
            logger.info("step %d: %s", self.state.step, format_metrics(metrics))
        self.model.train()
        return metrics

    def evaluate(self) -> dict:
        """Metrics over every eval example exactly once, whatever the number of processes."""
        if self.eval_dataloader is None:
            return {}
        rows = self._run_inference(self.eval_dataloader)
        # Every process holds all predictions, so each computes the same metrics; no broadcast.
        metrics = self.task.compute_metrics(
            rows["predictions"], rows["labels"], self.id2label, rows.get("example_id")
        )
        metrics["loss"] = rows["loss_sum"] / max(rows["loss_count"], 1)
        ids = rows.get("example_id", rows.get("row_id"))
        metrics["samples"] = len(set(map(int, ids))) if ids else len(rows["predictions"])
        return {f"eval_{name}": value for name, value in metrics.items()}

    def predict(self, data: Dataset) -> dict[str, list]:
        """Per-row predictions, confidences and bookkeeping columns, in dataset order, on every
        process."""
        loader = self._dataloader(data, self.config.batching.per_device_eval_batch_size, False)
        return self._run_inference(self.accelerator.prepare(loader))

    @torch.inference_mode()
    def _run_inference(self, dataloader: DataLoader) -> dict:
        """Run the model over a non-shuffled dataloader and gather every row once, in order."""
        accelerator = self.accelerator
        self.model.eval()
        rows: dict = {"loss_sum": 0.0, "loss_count": 0}
        for batch in dataloader:
            inputs = model_inputs(batch)
            logits = self.model(**inputs).logits
            confidence, predicted = logits.float().softmax(dim=-1).max(dim=-1)
            tensors = {"predictions": predicted, "confidence": confidence}
            tensors.update({key: batch[key] for key in META_KEYS if key in batch})
            if "labels" in inputs:
                tensors["labels"] = inputs["labels"]
                tensors["loss_sum"], tensors["loss_count"] = per_example_loss(
                    logits, inputs["labels"]
                )
            if predicted.ndim > 1:  # token tasks: sequence lengths differ between processes
                tensors = {
                    key: accelerator.pad_across_processes(value, 1, IGNORE_INDEX)
                    if value.ndim > 1
                    else value
                    for key, value in tensors.items()
                }
            for key, value in accelerator.gather_for_metrics(tensors).items():
                if key.startswith("loss_"):
                    rows[key] += value.sum().item()
                else:
                    rows.setdefault(key, []).extend(value.cpu().numpy())
        if "row_id" in rows:  # absent only for a caller's own dataloader
            order = np.argsort(np.asarray(rows["row_id"]), kind="stable")
            for key, value in rows.items():
                if isinstance(value, list):
                    rows[key] = [value[i] for i in order]
        return rows

    def _results(self, eval_metrics: dict) -> dict:
        """Throughput counts training time alone (evaluation and checkpointing apart), summed
        with the tokens and samples over resumes."""
        self._flush_window_totals()
        totals = self.state.run_totals
        seconds = self.state.seconds
        runtime = max(seconds["train"], 1e-9)
        samples = self.accelerator.reduce(
            torch.tensor(self.state.samples_seen, device=self.accelerator.device), "sum"
        ).item()
        return {
            "train_loss": totals[0] / max(totals[1], 1),
            "train_tokens_per_second": round(totals[2] / runtime, 1),
            "train_padding_efficiency": round(totals[2] / max(totals[3], 1), 4),
            "peak_memory_mb": round(peak_memory_mb(self.accelerator.device), 1),
            "train_runtime": round(runtime, 3),
            "evaluation_runtime": round(seconds["eval"], 3),
            "checkpoint_runtime": round(seconds["checkpoint"], 3),
            "train_samples_per_second": round(samples / runtime, 3),
            "train_steps_per_second": round(self.state.step / runtime, 3),
            "global_step": self.state.step,
            "epoch": round(self._epoch_progress(), 4),
            "num_processes": self.accelerator.num_processes,
            "nonfinite_steps": self.state.nonfinite_steps,
            **self._best_results(),
            **eval_metrics,
            **self.extra_results,
        }

    def save_model(self, output_dir: str, results: dict | None = None) -> None:
        """Save the full, unwrapped model (safetensors), the tokenizer, the options and
        `results` (all_results.json) from the main process, as one atomic commit: a failed
        save leaves the previous model whole."""
        accelerator = self.accelerator
        accelerator.wait_for_everyone()
        # Every rank takes part: under FSDP/DeepSpeed this gathers the sharded weights.
        state_dict = accelerator.get_state_dict(self.model)
        failure = None
        if accelerator.is_main_process:
            model = accelerator.unwrap_model(self.model)

            def write(folder: str) -> None:
                model.save_pretrained(folder, state_dict=state_dict, save_function=accelerator.save)
                self.tokenizer.save_pretrained(folder)
                resolved = {
                    "learning_rate": self.config.resolved_learning_rate(),
                    "output_dir": output_dir,
                }
                write_json(
                    os.path.join(folder, "training_config.json"),
                    {**self.config.to_dict(), **resolved},
                )
                if results is not None:
                    write_json(os.path.join(folder, "all_results.json"), results)
                if self.write_extras is not None:
                    self.write_extras(folder, results or {})

            weights = sum(p.numel() * p.element_size() for p in model.parameters())
            try:
                commit_final_model(output_dir, write, self.state.step, estimate=weights)
            except OutputError as error:
                failure = str(error)
        raise_if_any_failed(accelerator, failure, output_dir)


def write_json(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)


def state_dict_problem(error: Exception) -> str:
    """The tensors a state-dict load names (size mismatches, missing keys), or its first line."""
    lines = [line.strip() for line in str(error).splitlines()]
    named = [line for line in lines if "size mismatch" in line or "Missing key" in line]
    return "; ".join(named[:4]) if named else first_line(error)


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


def check_label_column(data) -> None:
    """Fail early when a dataset carries no gold label column."""
    columns = getattr(data, "column_names", None)
    if columns is not None and not any(key in columns for key in LABEL_KEYS):
        raise InputError(
            f"the dataset has neither 'labels' nor 'label': got columns {columns}. "
            "Tokenize it with the task so that each example carries its gold label."
        )


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Summed cross-entropy and the number of labelled positions, per example."""
    losses = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(labels.shape)
    counts = (labels != IGNORE_INDEX).long()
    if labels.ndim > 1:
        return losses.sum(dim=1), counts.sum(dim=1)
    return losses, counts


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: allocated GPU memory, or resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def format_metrics(metrics: dict) -> str:
    return ", ".join(
        f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}"
        for name, value in metrics.items()
    )
