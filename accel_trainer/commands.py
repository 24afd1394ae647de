"""The subcommands, thin: each calls the library (AccelerateTrainer.from_files, Inference) and
prints what a user of the command line expects."""

from __future__ import annotations

import json
import logging
import os

from accel_trainer.config import EvalConfig, PredictConfig, TrainConfig, validate
from accel_trainer.errors import ConfigError, DataError, OtherTaskData, OutputError
from accel_trainer.runtime import exit_distributed_run
from accel_trainer.storage.hashing import file_digest
from accel_trainer.storage.output_folder import SaveFinished, check_writable_folder
from accel_trainer.storage.write_policy import check_target, write_owned

logger = logging.getLogger("accel_trainer")
EVAL_RESULTS = "eval_results.json"
EVAL_WHAT = f"{EVAL_RESULTS} in --output_dir"


def train(config: TrainConfig) -> dict:
    """`accel-trainer train`: fine-tune on the given data (or the demo corpus) and save."""
    try:
        trainer = build_trainer(config)
    except SaveFinished as finished:
        print(finished)
        return finished.results
    results = trainer.fit()
    if trainer.accelerator.is_main_process:  # the only process that saved
        print(f"Saved the model and all_results.json to {trainer.output_dir}")
        print(json.dumps(results, indent=2))
    exit_distributed_run()  # before `trainer` and its DDP reducer are freed
    return results


def build_trainer(config: TrainConfig):
    """The trainer of a train command: the same call a Python user makes."""
    from accel_trainer.api import AccelerateTrainer

    return AccelerateTrainer.from_files(config)


def evaluate(config: EvalConfig) -> dict:
    """`accel-trainer evaluate`: score a saved model on labelled data."""
    validate(config)
    output_dir = config.resolved_output_dir()
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(
            f"--output_dir is a file, not a folder: got {output_dir!r}. Name a folder."
        )
    check_writable_folder(output_dir)
    results_file = os.path.join(output_dir, EVAL_RESULTS)
    check_target(results_file, EVAL_WHAT, config.overwrite_output_file,
                 "Choose another --output_dir", folder_made=True)  # fmt: skip
    if config.data.dataset_name is not None:
        from accel_trainer.hub import check_dataset_access

        check_dataset_access(config.data.dataset_name)
    from accel_trainer import prepare
    from accel_trainer.runtime import create_accelerator
    from accel_trainer.train.inference import Inference

    accelerator = create_accelerator(config.runtime)
    prepare.quiet_other_ranks(accelerator.is_main_process)
    saved = prepare.load_saved(config, config.task_options.given())
    task, tokenizer = saved.task, saved.tokenizer
    try:
        eval_raw = prepare.read_split(config.data, task, "validation")
        eval_raw = prepare.first_examples(
            eval_raw, config.data.max_eval_samples, "max_eval_samples"
        )
    except OtherTaskData as error:
        raise for_saved_task(
            error, config.model_name_or_path, task.name, "--validation_file"
        ) from None
    task.check_labels(eval_raw, saved.labels, prepare.eval_source(config.data))
    task.check_label_options(saved.labels)
    label2id = saved.model.config.label2id
    eval_data = prepare.tokenized(
        accelerator, task, tokenizer, label2id, config.data, "eval", eval_raw,
        lambda options: task.tokenize(
            eval_raw, tokenizer, label2id, config.data.max_seq_length, False, options
        ),
    )  # fmt: skip
    # Only the evaluation's own counts: a saved run's train_* fields are not this command's.
    stats = task.length_report(config.data.max_seq_length, 0, eval_raw)
    stats = {key: value for key, value in stats.items() if not key.startswith("train_")}
    batch_size = config.batching.per_device_eval_batch_size
    inference = Inference(accelerator, saved.model, tokenizer, task, batch_size)
    metrics = {**inference.evaluate(inference.loader(eval_data)), **stats}
    if accelerator.is_main_process:
        print(json.dumps(metrics, indent=2))  # stdout stays one JSON document
        path = write_eval_results(output_dir, config, metrics)
        logger.info("wrote %s", path)
    accelerator.wait_for_everyone()
    return metrics


def for_saved_task(error: OtherTaskData, model_dir: str, task: str, option: str) -> DataError:
    """A file of another task given to evaluate or predict, whose task is the model's: the
    advice names the model, not a --task they do not take."""
    return DataError(
        f"{error.problem} The model at {model_dir} does task {task!r}: give {option} in a "
        f"format of that task, or a model trained with --task {error.task}."
    )


def write_eval_results(output_dir: str, config: EvalConfig, metrics: dict) -> str:
    """EVAL_RESULTS in output_dir: this evaluation's metrics with the model and the data file
    (path and sha256) they were measured on, by the write policy; all_results.json, the
    training run's own record, is never touched."""
    data = config.data.validation_file
    record = {
        "model_name_or_path": os.path.abspath(config.model_name_or_path),
        "validation_file": os.path.abspath(data) if data else None,
        "validation_file_sha256": file_digest(data) if data else None,
        "dataset_name": config.data.dataset_name,
        **(
            {"max_eval_samples": config.data.max_eval_samples}
            if config.data.max_eval_samples
            else {}
        ),
        **metrics,
    }
    path = os.path.join(output_dir, EVAL_RESULTS)
    try:
        os.makedirs(output_dir, exist_ok=True)
    except OSError as error:
        raise OutputError(
            f"--output_dir cannot be created: got {output_dir!r} ({error.strerror}). Choose a "
            "folder you can write to; the metrics are printed above."
        ) from None
    write_owned(path, json.dumps(record, indent=2) + "\n", config.overwrite_output_file, EVAL_WHAT)
    return path


def read_input_once(accelerator, task, source):
    """The examples of --input_file, read once, the same on every process: a file changed
    while it was read, or read differently by some process, stops the run."""
    from datasets.fingerprint import Hasher

    from accel_trainer.runtime import check_same_on_every_process

    def state() -> tuple | None:
        try:
            found = os.stat(source.input_file)
        except OSError:
            return None
        return found.st_ino, found.st_size, found.st_mtime_ns

    before = state()
    raw = task.read_for_prediction(source)
    changed = state() != before
    contents = [Hasher.hash(raw.data.table), changed]  # a process that saw a change differs
    check_same_on_every_process(accelerator, {"--input_file contents": contents})
    if changed:
        raise DataError(
            f"--input_file changed while it was read: got {source.input_file!r}. Run predict "
            "again once nothing writes to it."
        )
    return raw


def predict(config: PredictConfig) -> int:
    """`accel-trainer predict`: label a file with a saved model; output in input order."""
    validate(config)
    from accel_trainer import prepare
    from accel_trainer.runtime import create_accelerator
    from accel_trainer.storage.predictions import (
        check_output_file,
        prediction_input,
        write_predictions,
    )
    from accel_trainer.train.inference import Inference

    check_output_file(config)
    accelerator = create_accelerator(config.runtime)
    prepare.quiet_other_ranks(accelerator.is_main_process)
    saved = prepare.load_saved(config, config.task_options.given())
    task, tokenizer, max_length = saved.task, saved.tokenizer, config.data.max_seq_length
    source = prediction_input(config, task, saved.labels)
    try:
        raw = read_input_once(accelerator, task, source)
    except OtherTaskData as error:
        raise for_saved_task(error, config.model_name_or_path, task.name, "--input_file") from None
    data = prepare.tokenized(
        accelerator, task, tokenizer, None, config.data, "predict", raw,
        lambda options: task.encode_for_prediction(raw, tokenizer, max_length, options),
    )  # fmt: skip
    batch_size = config.batching.per_device_eval_batch_size
    rows = Inference(accelerator, saved.model, tokenizer, task, batch_size).predict(data)
    if accelerator.is_main_process:
        write_predictions(task, raw, rows, saved.model.config.id2label, config, source)
        print(f"Wrote {len(raw)} predictions to {config.output_file}")
    accelerator.wait_for_everyone()
    return len(raw)
