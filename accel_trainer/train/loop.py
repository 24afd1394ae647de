"""AccelerateTrainer: the training loop, a table of contents over the components (step,
batching, resume, checkpointer, best model, run log, inference, export)."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from tqdm.auto import tqdm

from accel_trainer.config import validate
from accel_trainer.errors import Preempted
from accel_trainer.lora import (
    is_peft_model,
    parameter_counts,
)
from accel_trainer.runtime import (
    on_main_then_share,
    peak_memory_mb,
    prepare_sharded,
    seed_everything,
    sharding,
    training_accelerator,
)
from accel_trainer.storage.lock import OutputLock
from accel_trainer.storage.output_folder import check_output_dir
from accel_trainer.train.arguments import check_accelerator, check_arguments, check_parts
from accel_trainer.train.batching import (
    TrainBatches,
    check_label_column,
    step_groups,
)
from accel_trainer.train.best import BestModel
from accel_trainer.train.checkpointer import Checkpointer
from accel_trainer.train.export import data_sources, run_values, save_final_model
from accel_trainer.train.hooks import Observer, Observers
from accel_trainer.train.inference import Inference, format_metrics
from accel_trainer.train.model_setup import ready_model
from accel_trainer.train.optim import TrainPlan, optimizer_and_scheduler, plan_training
from accel_trainer.train.resume import (
    Position,
    ResumePoint,
    plan_resume,
    restore,
    training_options,
)
from accel_trainer.train.run_log import RunLog, log_setup, trained_parameters
from accel_trainer.train.session import fit_session
from accel_trainer.train.state import TrainState, restore_rng
from accel_trainer.train.step import (
    OptimizerStep,
    count_nonfinite_step,
)

if TYPE_CHECKING:
    from datasets import Dataset

    from accel_trainer.config import TrainConfig
    from accel_trainer.tasks.base import Task

logger = get_logger(__name__)


class AccelerateTrainer:
    """Fine-tunes a transformers model for a task, through one `accelerate.Accelerator`."""

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer,
        config: TrainConfig,
        task: Task,
        train_data: Dataset | None = None,
        eval_data: Dataset | None = None,
        accelerator: Accelerator | None = None,
        extra_results: dict | None = None,
        resume: ResumePoint | None = None,
        identity: dict | None = None,
        observers: list[Observer] = (),
        data_files: dict[str, str | None] | None = None,
        output_lock: OutputLock | None = None,
    ):
        """`resume`: the checkpoint plan_resume chose (else fit() chooses); `identity`: what a
        resumed run must share with this one (default: the labels); `data_files`: the data's
        provenance for the model card (default: the config's data options); `output_lock`: the
        output folder, checked and locked by from_files (else fit() checks and locks it)."""
        check_arguments(config, task, observers)
        check_parts(model, tokenizer, task)
        validate(config)
        check_label_column(train_data, task.label_key, "train_data")
        check_label_column(eval_data, task.label_key, "eval_data")
        self.config, self.task, self.tokenizer = config, task, tokenizer
        self.output_dir = config.resolved_output_dir()
        self.accelerator = accelerator or training_accelerator(config)
        check_accelerator(self.accelerator)
        self.accumulation_steps = config.batching.resolved_accumulation_steps(
            self.accelerator.num_processes
        )
        self.extra_results = extra_results or {}
        self.state = TrainState()
        labels = model.config.id2label
        self.identity = identity or {"labels": [labels[i] for i in sorted(labels)]}
        self.resume_point = resume
        self.data_files = data_files if data_files is not None else data_sources(config)
        self.observers = Observers(observers)
        seed_everything(config.runtime.seed)
        self.batches = None
        if train_data is not None:
            self.batches = TrainBatches(
                train_data, task.collator(tokenizer), config, self.accelerator.num_processes,
                self.accumulation_steps, self.accelerator.device.type == "cuda",
            )  # fmt: skip
        train_loader = self.batches.loader if self.batches else None
        model, self.layout, self.layout_reason = ready_model(
            model, tokenizer, task, config, self.accelerator
        )
        self.step_runner: OptimizerStep | None = None
        if train_loader is None:
            self.model, self.train_dataloader = prepare_sharded(self.accelerator, model), None
        else:
            self.train_dataloader = self.accelerator.prepare(train_loader)
            self.model = self._prepare_training(model, self._plan())
        self.inference = Inference(
            self.accelerator,
            self.model,
            tokenizer,
            task,
            config.batching.per_device_eval_batch_size,
            prepared=True,
        )
        self.eval_dataloader = None if eval_data is None else self.inference.loader(eval_data)
        self.best = BestModel(
            config.evaluation.metric_for_best_model,
            config.evaluation.early_stopping_patience,
            config.evaluation.load_best_model_at_end,
            self.output_dir,
        )
        self.checkpointer = Checkpointer(
            self.accelerator,
            self.output_dir,
            config.checkpointing.checkpointing_steps,
            config.checkpointing.save_total_limit,
        )
        self.run_log = RunLog(self.accelerator, self.output_dir, config.logging.report_to)
        # Held by the main process while it owns output_dir: taken by preparation, else fit().
        self.folder_checked = output_lock is not None
        self.output_lock = output_lock or OutputLock(
            self.output_dir, self.accelerator.is_main_process
        )
        self.fitted = False
        self._rng_to_restore: dict | None = None

    def release_output_dir(self) -> None:
        """Give up this trainer's hold on its output folder (fit() takes it again)."""
        self.output_lock.release()
        self.folder_checked = False

    def add_observer(self, observer: Observer) -> None:
        self.observers.attached.append(observer)

    @property
    def log_history(self) -> list[dict]:
        return self.run_log.records

    @property
    def id2label(self) -> dict[int, str]:
        return self.inference.id2label

    @property
    def optimizer(self):
        return None if self.step_runner is None else self.step_runner.optimizer

    @property
    def lr_scheduler(self):
        return None if self.step_runner is None else self.step_runner.scheduler

    def fit(self) -> dict:
        """Train, evaluate at each epoch end (and every eval_steps), checkpoint, save the final
        model folder; return the results."""
        with fit_session(self) as (preemption, progress):
            plan = self._plan()
            log_setup(self.accelerator, self.config, plan, self.accumulation_steps,
                      self.layout_reason, self.accelerator.unwrap_model(self.model))  # fmt: skip
            self._start(plan, progress)
            self.observers.notify("on_train_begin", self)
            for epoch in range(self.state.epoch_index, plan.num_epochs):
                for micro_batches in self._steps_of_epoch(epoch, plan):
                    self.observers.notify("on_step_begin", self, micro_batches)
                    outcome = self.step_runner.run(micro_batches)
                    self._finish_step(outcome, plan, progress)
                    if (
                        self.config.evaluation.eval_steps
                        and self.state.step % self.config.evaluation.eval_steps == 0
                    ):
                        self._evaluate_and_log()
                    stop = preemption.agreed()
                    if stop or self._checkpoint_due("step"):
                        self.save_checkpoint()
                    if stop:
                        raise Preempted(self.state.step)
                    if self._finished(plan):
                        break
                if self.state.last_eval_step != self.state.step:
                    self._evaluate_and_log()
                if self._checkpoint_due("epoch"):
                    self.save_checkpoint()
                if self._finished(plan):
                    break
            progress.close()
            self.run_log.clock.stop()
            results = self._results(self._final_metrics())
            self.save_model(self.output_dir, results)
            self.accelerator.end_training()
            self.observers.notify("on_train_end", self, results)
            return results

    def _plan(self) -> TrainPlan:
        return plan_training(self.config, len(self.train_dataloader), self.accumulation_steps)

    def _prepare_training(self, model, plan: TrainPlan):
        """The model prepared with its optimizer and schedule, in one call (FSDP2 maps the
        optimizer to the sharded parameters, DeepSpeed wraps all three in its engine), and the
        step that runs them; returns the prepared model."""
        config = self.config
        optimizer, scheduler = optimizer_and_scheduler(model, config, plan)
        model, optimizer, scheduler = prepare_sharded(self.accelerator, model, optimizer, scheduler)
        self.step_runner = OptimizerStep(
            self.accelerator,
            model,
            optimizer,
            scheduler,
            self.accumulation_steps,
            config.batching.loss_normalization,
            config.optim.max_grad_norm,
            self.layout,
        )
        return model

    def _start(self, plan: TrainPlan, progress: tqdm) -> None:
        """Resume from the planned checkpoint, or start fresh; then the log and the clock."""
        if self.resume_point is None and self.config.checkpointing.resume_from_checkpoint:
            self.resume_point = plan_resume(self.accelerator, self.config, self.identity)
        resumed = self.resume_point is not None
        if resumed:
            position = Position(
                len(self.train_dataloader),
                len(self.train_dataloader.dataset),
                plan.total_steps,
                plan.num_epochs,
                self._topology(),
            )
            self.state, self._rng_to_restore = restore(
                self.accelerator, self.model, self.resume_point, position, self.config.runtime.seed
            )
            self.checkpointer.last_step = self.state.step
        self.checkpointer.start(replace_earlier=not resumed and self.config.overwrite_output_dir)
        (
            self.state.world_size,
            self.state.per_device_train_batch_size,
            self.state.gradient_accumulation_steps,
        ) = self._topology()
        self.state.sharding = sharding(self.accelerator)
        self.state.options, self.state.identity = training_options(self.config), self.identity
        self.run_log.start(self.state, resumed, self.config.to_dict())
        progress.reset(total=plan.total_steps)
        progress.update(self.state.step)
        self.model.train()

    def _topology(self) -> tuple[int, int, int]:
        return (
            self.accelerator.num_processes,
            self.config.batching.per_device_train_batch_size,
            self.accumulation_steps,
        )

    def _steps_of_epoch(self, epoch: int, plan: TrainPlan):
        """This epoch's optimizer steps, as lists of micro-batches, less the micro-batches a
        checkpoint says were consumed; the saved RNG stream continues on the first."""
        if epoch != self.state.epoch_index:  # a new epoch, not the one a checkpoint left off in
            self.state.epoch_index, self.state.micro_step_in_epoch = epoch, 0
        self.train_dataloader.set_epoch(epoch)
        if self.batches.sampler is not None:
            self.batches.sampler.set_epoch(epoch)
        skip = self.state.micro_step_in_epoch
        if self._finished(plan) or skip >= len(self.train_dataloader):
            return  # resumed at the last step or the end of this epoch
        batches = self.train_dataloader
        if skip:
            batches = self.accelerator.skip_first_batches(self.train_dataloader, skip)
        for micro_batches in step_groups(batches, self.accumulation_steps):
            if self._rng_to_restore is not None:  # resumed: continue the saved RNG stream
                restore_rng(self._rng_to_restore)
                self._rng_to_restore = None
            yield micro_batches

    def _finish_step(self, outcome, plan: TrainPlan, progress: tqdm) -> None:
        """Count the step, guard against divergence, log every --logging_steps."""
        state = self.state
        state.micro_step += outcome.micro_batches
        state.micro_step_in_epoch += outcome.micro_batches
        state.samples_seen += outcome.examples
        if outcome.skipped:
            count_nonfinite_step(
                state, outcome.grad_norm, self.config.optim.max_nonfinite_steps, self.output_dir,
                self._log,
            )  # fmt: skip
        elif outcome.updated:
            state.consecutive_nonfinite = 0
        state.step += 1
        progress.update(1)
        if state.step % self.config.logging.logging_steps == 0 or state.step == plan.total_steps:
            self.run_log.add_totals(state, self.step_runner.take_totals())
            record = {
                "step": state.step,
                "epoch": round(self._epoch_progress(), 4),
                **self.run_log.take_pending(state),
                "learning_rate": outcome.learning_rate,
                "grad_norm": outcome.grad_norm,
                "peak_memory_mb": round(peak_memory_mb(self.accelerator.device), 1),
            }
            self._log(record)
            progress.set_postfix(
                epoch=f"{record['epoch']:.2f}",
                loss=f"{record['loss']:.4f}",
                lr=f"{outcome.learning_rate:.2e}",
            )
        self.observers.notify("on_step_end", self, outcome)

    def _log(self, record: dict) -> None:
        self.run_log.log(record)
        self.observers.notify("on_log", self, record)

    def _epoch_progress(self) -> float:
        """The fractional epoch, as logs show it."""
        state = self.state
        return state.epoch_index + state.micro_step_in_epoch / len(self.train_dataloader)

    def _finished(self, plan: TrainPlan) -> bool:
        """All optimizer steps done, or early stopping's patience ran out."""
        return self.state.step >= plan.total_steps or self.best.stopped_early(self.state)

    def _checkpoint_due(self, moment: str) -> bool:
        return self.checkpointer.due(moment, self.state, self.best.must_checkpoint(self.state))

    def save_checkpoint(self) -> str:
        """Commit the full training state as OUTPUT_DIR/checkpoint-<step>, then rotate."""
        with self.run_log.clock.paused("checkpoint"):
            # So that the state holds every loss seen so far.
            self.run_log.add_totals(self.state, self.step_runner.take_totals())
            self.state.log_records = len(self.log_history)
            model = self.accelerator.unwrap_model(self.model)
            trainable, total = parameter_counts(model)
            saved = trainable if is_peft_model(model) else total  # LoRA saves no frozen weights
            estimate = 4 * (saved + 2 * trainable)  # fp32 weights and AdamW's two moments
            best = {self.best.checkpoint_path(self.state)}
            path = self.checkpointer.save(self.state, protect=best, estimate=estimate)
        self.observers.notify("on_checkpoint", self, path)
        return path

    def _evaluate_and_log(self) -> dict:
        with self.run_log.clock.paused("eval"):
            metrics = self.evaluate()
        self.state.last_eval_step = self.state.step
        if metrics:
            self.best.track(self.state, metrics)
            self._log(
                {"step": self.state.step, "epoch": round(self._epoch_progress(), 4), **metrics}
            )
            logger.info("step %d: %s", self.state.step, format_metrics(metrics))
            self.observers.notify("on_evaluate", self, metrics)
        self.model.train()
        return metrics

    def _final_metrics(self) -> dict:
        """The metrics of the model being saved: the last evaluation's, or the best one's."""
        records = [r for r in self.log_history if r["step"] == self.state.last_eval_step]
        metrics = {k: v for r in records for k, v in r.items() if k.startswith("eval_")}
        if not metrics and self.eval_dataloader is not None:
            metrics = self.evaluate()  # evaluated before the checkpoint this run resumed
        if self.best.load_at_end:
            metrics = self.best.load(
                self.accelerator, self.model, self.state, self.log_history, self.evaluate, metrics
            )
        return metrics

    def evaluate(self) -> dict:
        """Metrics over every eval example exactly once, whatever the number of processes."""
        if self.eval_dataloader is None:
            return {}
        return self.inference.evaluate(self.eval_dataloader)

    def predict(self, data: Dataset) -> dict[str, list]:
        """Per-row predictions, confidences and bookkeeping columns, in dataset order, on every
        process."""
        return self.inference.predict(data)

    def _results(self, eval_metrics: dict) -> dict:
        self.run_log.add_totals(self.state, self.step_runner.take_totals())
        samples = self.accelerator.reduce(
            torch.tensor(self.state.samples_seen, device=self.accelerator.device), "sum"
        ).item()
        return {
            **self.run_log.results(self.state, samples, peak_memory_mb(self.accelerator.device)),
            "epoch": round(self._epoch_progress(), 4),
            "num_processes": self.accelerator.num_processes,
            "distributed_type": self.accelerator.distributed_type.value,
            "sharding": sharding(self.accelerator),
            **trained_parameters(
                self.accelerator.unwrap_model(self.model), self.config.peft.save_adapter_only
            ),
            **self.best.results(self.state),
            **eval_metrics,
            **self.extra_results,
        }

    def save_model(self, output_dir: str, results: dict | None = None) -> None:
        """Save the final model folder (weights, tokenizer, config.json's accel_trainer entry,
        options, `results` and model card) atomically from the main process; a folder not yet
        checked (another one, or this trainer's own before fit()) is checked and locked first,
        as an output folder is."""
        own = os.path.abspath(output_dir) == os.path.abspath(self.output_dir)
        if own and self.folder_checked:  # fit()'s own save, or after it: held and checked
            self._save_final_model(output_dir, results)
            return
        lock = OutputLock(output_dir, self.accelerator.is_main_process)
        try:
            lock.acquire()
            check = lambda: check_output_dir(output_dir, self.config, demo=False)  # noqa: E731
            on_main_then_share(self.accelerator, check)
            self._save_final_model(output_dir, results)
        finally:
            lock.release()

    def _save_final_model(self, output_dir: str, results: dict | None) -> None:
        save_final_model(
            self.accelerator, self.model, self.tokenizer, self.task, self.config, output_dir,
            results, self.state.step, self.data_files,
            run_values(self.accelerator, self.accumulation_steps, self.layout,
                       self.config.batching.batch_layout),
        )  # fmt: skip
