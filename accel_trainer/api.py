"""What a Python user and `accel-trainer train` call: AccelerateTrainer, the training loop's
class with from_files, which builds it from a config's files (prepare.py does the work)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from accel_trainer.prepare import prepare_training
from accel_trainer.train import loop
from accel_trainer.train.arguments import check_arguments

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig
    from accel_trainer.tasks.base import Task
    from accel_trainer.train.hooks import Observer


class AccelerateTrainer(loop.AccelerateTrainer):
    """Fine-tunes a transformers model for a task, through one `accelerate.Accelerator`: built
    by from_files from a config's files, or from a model and tokenized datasets of your own."""

    @classmethod
    def from_files(
        cls, config: TrainConfig, task: Task | None = None, observers: list[Observer] = ()
    ) -> AccelerateTrainer:
        """The trainer of `config`'s data files (or --dataset_name, or the demo corpus without
        data options): options and output folder checked, data read and checked, model and
        tokenizer built, splits tokenized, the checkpoint to resume from chosen. Its fit()
        writes the complete model folder. `accel-trainer train` is this call."""
        check_arguments(config, task, observers)
        run = prepare_training(config, task)
        return cls(
            run.model,
            run.tokenizer,
            config,
            run.task,
            run.train_data,
            run.eval_data,
            accelerator=run.accelerator,
            extra_results=run.extra_results,
            resume=run.resume,
            identity=run.identity,
            observers=observers,
            data_files=run.data_files,
            output_lock=run.output_lock,
        )
