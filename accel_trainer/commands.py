"""The subcommands, top to bottom: validate, read data, build the model, run the trainer."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields

from accel_trainer.checkpoint import (
    file_digest,
    final_model_problem,
    touch,
    write_atomically,
)
from accel_trainer.config import (
    DataConfig,
    EvalConfig,
    PredictConfig,
    RunConfig,
    TrainConfig,
    validate,
)
from accel_trainer.errors import ConfigError, DataError, OutputError
from accel_trainer.models import (
    build_tiny_bert,
    build_wordpiece_tokenizer,
    check_model_source,
    check_sequence_length,
    load_pretrained,
    load_saved_model,
    saved_config,
)
from accel_trainer.output_folder import (
    DEMO_MARKER,
    OutputLock,
    SaveFinished,
    check_output_dir,
    check_writable_folder,
    finish_interrupted_save,
    mark_output_dir,
)
from accel_trainer.preprocessing import tokenize_once_per_node
from accel_trainer.runtime import on_main_then_share

logger = logging.getLogger("accel_trainer")


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
    return results


def build_trainer(config: TrainConfig):
    """Everything before training: checks, data, tokenizer, model, then the trainer."""
    validate(config)
    check_output_dir(config.resolved_output_dir(), config)
    if not config.is_tiny_bert:
        check_model_source(config.model_name_or_path)
    from accel_trainer.runtime import check_same_on_every_process, create_accelerator
    from accel_trainer.tasks import task_for_training, task_options_of
    from accel_trainer.train.resume import plan_resume

    accelerator = create_accelerator(config)
    quiet_other_ranks(accelerator.is_main_process)
    task = task_for_training(config.task, task_options_of(config))
    if config.is_demo:
        task.demo_defaults()
    train_raw, eval_raw = read_train_and_eval(config, task, accelerator)
    labels = config.label_names or task.label_list(train_raw)
    check_labels(config, task, labels, train_raw, eval_raw)
    check_metric_name(config, task, labels)
    task.learn_from_training_data(train_raw)
    # What a resumed run must share with the run it continues, and every process with the rest.
    identity = {"labels": labels, "data files": data_digests(config)}
    if accelerator.num_processes > 1:
        check_same_on_every_process(accelerator, {"options": config.to_dict(), **identity})

    # Before the heavy work: a second run on the same folder stops here.
    output_dir = config.resolved_output_dir()
    output_lock = OutputLock(output_dir, accelerator.is_main_process)
    output_lock.acquire()
    try:
        # Again, now that no other run can change the folder: one may have finished meanwhile.
        on_main_then_share(accelerator, lambda: check_output_dir(output_dir, config))
        finish_interrupted_save(accelerator, output_dir)
        if accelerator.is_main_process:
            mark_output_dir(output_dir, config.is_demo)
        resume = plan_resume(accelerator, config, identity)
        return build_model_and_trainer(
            config, accelerator, task, labels, train_raw, eval_raw, resume, identity, output_lock
        )
    except BaseException:
        output_lock.release()
        raise


def check_metric_name(config: TrainConfig, task, labels: list[str]) -> None:
    """Refuse a --metric_for_best_model the task never computes, before training."""
    name = config.metric_for_best_model
    if name is None:
        return
    known = [f"eval_{metric}" for metric in [*task.metric_names(labels), "loss"]]
    if name not in known:
        raise ConfigError(
            f"--metric_for_best_model is not an eval metric of this task: got {name!r}. Use one "
            f"of {known}."
        )


def build_model_and_trainer(
    config: TrainConfig, accelerator, task, labels, train_raw, eval_raw, resume, identity, lock
):
    """Tokenizer, model and tokenized data (cached, once per machine), then the trainer."""
    from accel_trainer.runtime import seed_everything
    from accel_trainer.train import AccelerateTrainer

    seed_everything(config.seed)  # before the model: its new head (or all of tiny-bert) is random
    if config.is_tiny_bert:
        tokenizer = build_wordpiece_tokenizer(
            task.words(train_raw), model_max_length=max(512, config.max_seq_length)
        )
        model = build_tiny_bert(
            task.auto_model_class_name, len(tokenizer), labels, config.max_seq_length
        )
    else:
        model, tokenizer = load_pretrained(
            task.auto_model_class_name, config.model_name_or_path, labels, task.tokenizer_options
        )
    check_sequence_length(config.max_seq_length, model, tokenizer)
    task.prepare_model(model, tokenizer)
    label2id = model.config.label2id
    parts = tokenization_parts(config, task, tokenizer, label2id)

    def tokenized(raw, split: str):
        return tokenize_once_per_node(
            accelerator,
            split,
            lambda options: task.tokenize(
                raw, tokenizer, label2id, config.max_seq_length, split == "train", options
            ),
            {**parts, "data": raw._fingerprint},
            config.preprocessing_num_workers,
            config.overwrite_cache,
        )

    train_data = tokenized(train_raw, "train")
    eval_data = tokenized(eval_raw, "eval") if eval_raw is not None else None
    data_stats = task.length_report(config.max_seq_length, len(train_raw), eval_raw)

    return AccelerateTrainer(
        model,
        tokenizer,
        config,
        task,
        train_data,
        eval_data,
        accelerator=accelerator,
        extra_results={"train_samples": len(train_raw), **data_stats},
        resume=resume,
        identity=identity,
        data_files=data_files(config, task),
        output_lock=lock,
    )


def tokenization_parts(config: RunConfig, task, tokenizer, label2id: dict | None) -> dict:
    """What shapes tokenized data besides the rows themselves: the tokenization cache's key."""
    from accel_trainer.preprocessing import task_fingerprint, tokenizer_fingerprint

    return {
        "task": task_fingerprint(task),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "label2id": label2id,
        "max_seq_length": config.max_seq_length,
    }


def data_files(config: TrainConfig, task) -> dict[str, str | None]:
    """Where the training and evaluation data came from, for the model card."""
    if config.is_demo:
        folder = os.path.join(config.resolved_output_dir(), "data")
        train_path, eval_path = task.demo_files(folder)
        return {"train (demo corpus)": train_path, "eval (demo corpus)": eval_path}
    if config.dataset_name is not None:
        name = " ".join(filter(None, [config.dataset_name, config.dataset_config_name]))
        return {"train and eval": name}
    return {"train": config.train_file, "eval": config.validation_file}


def data_digests(config: TrainConfig) -> dict:
    """What identifies the data each process reads: file contents, or the dataset's name."""
    digests = {}
    for option in ("train_file", "validation_file"):
        path = getattr(config, option)
        if path is not None:
            digests[option] = file_digest(path)
    if config.dataset_name is not None:
        digests["dataset_name"] = [config.dataset_name, config.dataset_config_name]
    return digests


def check_labels(config: TrainConfig, task, labels: list[str], train_raw, eval_raw) -> None:
    if config.label_names:
        task.check_labels(train_raw, labels, train_source(config), "not in --label_names")
    if eval_raw is not None:
        task.check_labels(eval_raw, labels, eval_source(config))
    task.check_label_options(labels)


def load_saved(config: RunConfig):
    """Accelerator, task, model and tokenizer of a folder saved by `train`."""
    from accel_trainer.runtime import create_accelerator
    from accel_trainer.tasks import task_from_settings

    model_dir = config.model_name_or_path
    if os.path.isdir(model_dir):  # an interrupted or damaged save, before reading any of it
        problem = final_model_problem(model_dir)
        if problem is not None:
            raise ConfigError(f"--model_name_or_path cannot be used: got {model_dir!r}; {problem}.")
    check_model_source(model_dir, saved_by_us=True)
    labels, settings = saved_config(model_dir)
    task = task_from_settings(settings, model_dir)
    task.apply_run_options(config)
    run_config = TrainConfig(**{f.name: getattr(config, f.name) for f in fields(RunConfig)})
    if isinstance(config, EvalConfig):
        run_config.output_dir = config.resolved_output_dir()
    else:
        run_config.output_dir = os.path.dirname(os.path.abspath(config.output_file))
    accelerator = create_accelerator(run_config)
    quiet_other_ranks(accelerator.is_main_process)
    return run_config, accelerator, task, labels


def evaluate(config: EvalConfig) -> dict:
    """`accel-trainer evaluate`: score a saved model on labelled data."""
    validate(config)
    output_dir = config.resolved_output_dir()
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(
            f"--output_dir is a file, not a folder: got {output_dir!r}. Name a folder."
        )
    check_writable_folder(output_dir)
    run_config, accelerator, task, labels = load_saved(config)
    eval_raw = read_split(config, task, "validation")
    task.check_labels(eval_raw, labels, eval_source(config))
    task.check_label_options(labels)
    model, tokenizer = load_saved_model(
        task.auto_model_class_name, config.model_name_or_path, task.tokenizer_options
    )
    check_sequence_length(config.max_seq_length, model, tokenizer)
    label2id = model.config.label2id
    eval_data = tokenize_once_per_node(
        accelerator,
        "eval",
        lambda options: task.tokenize(
            eval_raw, tokenizer, label2id, config.max_seq_length, False, options
        ),
        {**tokenization_parts(config, task, tokenizer, label2id), "data": eval_raw._fingerprint},
        config.preprocessing_num_workers,
        config.overwrite_cache,
    )
    # Only the evaluation's own counts: a saved run's train_* fields are not this command's.
    stats = task.length_report(config.max_seq_length, 0, eval_raw)
    stats = {key: value for key, value in stats.items() if key.startswith("eval_")}
    from accel_trainer.train.inference import Inference

    inference = Inference(accelerator, model, tokenizer, task, config.per_device_eval_batch_size)
    metrics = {**inference.evaluate(inference.loader(eval_data)), **stats}
    if accelerator.is_main_process:
        print(json.dumps(metrics, indent=2))  # stdout stays one JSON document
        path = write_eval_results(run_config.output_dir, config, metrics)
        logger.info("wrote %s", path)
    accelerator.wait_for_everyone()
    return metrics


EVAL_RESULTS = "eval_results.json"


def write_eval_results(output_dir: str, config: EvalConfig, metrics: dict) -> str:
    """EVAL_RESULTS in output_dir: this evaluation's metrics with the model and the data file
    (path and sha256) they were measured on, written atomically; all_results.json, the training
    run's own record, is never touched."""
    data = config.validation_file
    record = {
        "model_name_or_path": os.path.abspath(config.model_name_or_path),
        "validation_file": os.path.abspath(data) if data else None,
        "validation_file_sha256": file_digest(data) if data else None,
        "dataset_name": config.dataset_name,
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
    write_atomically(path, json.dumps(record, indent=2) + "\n")
    return path


def predict(config: PredictConfig) -> int:
    """`accel-trainer predict`: label a file with a saved model; output in input order."""
    validate(config)
    from accel_trainer.predictions import check_output_file

    check_output_file(config)
    run_config, accelerator, task, labels = load_saved(config)
    try:
        raw = task.read(config.input_file, "--input_file", config.data_format, labelled=False)
    except DataError as error:
        raise DataError(
            f"{error} The model at {config.model_name_or_path} does task {task.name!r}: give "
            "--input_file in a format of that task."
        ) from None
    model, tokenizer = load_saved_model(
        task.auto_model_class_name, config.model_name_or_path, task.tokenizer_options
    )
    check_sequence_length(config.max_seq_length, model, tokenizer)
    data = tokenize_once_per_node(
        accelerator,
        "predict",
        lambda options: task.encode_for_prediction(raw, tokenizer, config.max_seq_length, options),
        {**tokenization_parts(config, task, tokenizer, None), "data": raw._fingerprint},
        config.preprocessing_num_workers,
        config.overwrite_cache,
    )
    from accel_trainer.predictions import write_predictions
    from accel_trainer.train.inference import Inference

    inference = Inference(accelerator, model, tokenizer, task, config.per_device_eval_batch_size)
    rows = inference.predict(data)
    if accelerator.is_main_process:
        write_predictions(task, raw, rows, model.config.id2label, config)
        print(f"Wrote {len(raw)} predictions to {config.output_file}")
    accelerator.wait_for_everyone()
    return len(raw)


def read_train_and_eval(config: TrainConfig, task, accelerator):
    """The raw train and eval splits; the demo corpus is written first when no data is given."""
    if config.is_demo:
        output_dir = config.resolved_output_dir()
        folder = os.path.join(output_dir, "data")
        with accelerator.main_process_first():
            if accelerator.is_local_main_process:
                # Marked first: an interrupted demo run's folder stays one a demo may rewrite.
                os.makedirs(output_dir, exist_ok=True)
                touch(os.path.join(output_dir, DEMO_MARKER))
                if os.path.islink(folder):
                    os.unlink(folder)  # the demo's own data/ is a folder here, never a link
                task.write_demo_corpus(folder)
        demo_train, demo_eval = task.demo_files(folder)
        logger.info("No data given: training on the demo corpus written to %s", folder)
        train_raw = task.read(demo_train, "demo train file", "auto")
        eval_raw = task.read(demo_eval, "demo validation file", "auto")
        return train_raw, eval_raw
    train_raw = read_split(config, task, "train")
    eval_raw = None
    if config.validation_file is not None or config.dataset_name is not None:
        eval_raw = read_split(config, task, "validation")
    return train_raw, eval_raw


def read_split(config: DataConfig, task, split: str):
    if config.dataset_name is not None:
        return task.read_hub(config.dataset_name, config.dataset_config_name, split)
    if split == "train":
        return task.read(config.train_file, "--train_file", config.data_format)
    return task.read(config.validation_file, "--validation_file", config.data_format)


def train_source(config: DataConfig) -> str:
    if config.dataset_name:
        return f"--dataset_name {config.dataset_name} split 'train'"
    return f"--train_file {config.train_file}" if config.train_file else "demo train file"


def eval_source(config: DataConfig) -> str:
    if config.dataset_name:
        return f"--dataset_name {config.dataset_name} split 'validation'"
    if config.validation_file:
        return f"--validation_file {config.validation_file}"
    return "demo validation file"


def quiet_other_ranks(is_main_process: bool) -> None:
    """Only the main process prints library warnings and progress bars."""
    if is_main_process:
        return
    import datasets
    import transformers

    datasets.utils.logging.set_verbosity_error()
    datasets.disable_progress_bars()
    transformers.utils.logging.set_verbosity_error()
    logging.getLogger("accel_trainer").setLevel(logging.ERROR)
