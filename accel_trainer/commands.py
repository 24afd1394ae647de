"""The subcommands, top to bottom: validate, read data, build the model, run the trainer."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields

from accel_trainer.config import DataConfig, EvalConfig, TrainConfig, validate
from accel_trainer.errors import ConfigError, DataError
from accel_trainer.models import (
    build_tiny_bert,
    build_wordpiece_tokenizer,
    check_model_source,
    load_pretrained,
    saved_labels,
)

logger = logging.getLogger("accel_trainer")
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "all_results.json")


def train(config: TrainConfig) -> dict:
    """`accel-trainer train`: fine-tune on the given data (or the demo corpus) and save."""
    trainer = build_trainer(config)
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
    from accel_trainer.tasks import NerTask
    from accel_trainer.trainer import create_accelerator

    accelerator = create_accelerator(config)
    quiet_other_ranks(accelerator.is_main_process)
    task = NerTask(label_all_tokens=config.label_all_tokens, tag_scheme=config.tag_scheme)
    train_raw, eval_raw = read_train_and_eval(config, task, accelerator)
    labels = config.label_names or task.label_list(train_raw)
    if config.label_names:
        task.check_labels(train_raw, labels, train_source(config))
    if eval_raw is not None:
        task.check_labels(eval_raw, labels, eval_source(config))

    from accelerate.utils import set_seed

    set_seed(config.seed)  # before the model: its new head (or all of tiny-bert) is random
    if config.is_tiny_bert:
        tokenizer = build_wordpiece_tokenizer(train_raw["tokens"])
        model = build_tiny_bert(
            task.auto_model_class_name, len(tokenizer), labels, config.max_seq_length
        )
    else:
        model, tokenizer = load_pretrained(
            task.auto_model_class_name, config.model_name_or_path, labels
        )
    model.config.accel_trainer_task = task.name
    label2id = model.config.label2id
    with accelerator.main_process_first():
        train_data = task.tokenize(train_raw, tokenizer, label2id, config.max_seq_length, True)
        eval_data = None
        if eval_raw is not None:
            eval_data = task.tokenize(eval_raw, tokenizer, label2id, config.max_seq_length, False)
    report_truncation(task, config.max_seq_length, len(train_raw), eval_raw)

    from accel_trainer.trainer import AccelerateTrainer

    return AccelerateTrainer(
        model,
        tokenizer,
        config,
        task,
        train_data,
        eval_data,
        accelerator=accelerator,
        extra_results={
            "train_samples": len(train_raw),
            "train_truncated_sentences": task.truncated.get("train", 0),
            "eval_truncated_sentences": task.truncated.get("eval", 0),
        },
    )


def evaluate(config: EvalConfig) -> dict:
    """`accel-trainer evaluate`: score a saved model on labelled data."""
    validate(config)
    check_model_source(config.model_name_or_path)
    labels = saved_labels(config.model_name_or_path)
    if not labels:
        raise ConfigError(
            f"--model_name_or_path has no id2label in config.json: got "
            f"{config.model_name_or_path!r}. Give a folder saved by accel-trainer train."
        )
    from accel_trainer.tasks import NerTask
    from accel_trainer.trainer import AccelerateTrainer, create_accelerator

    run_config = TrainConfig(
        **{f.name: getattr(config, f.name) for f in fields(DataConfig)},
    )
    run_config.output_dir = config.resolved_output_dir()
    accelerator = create_accelerator(run_config)
    quiet_other_ranks(accelerator.is_main_process)
    task = NerTask(tag_scheme=config.tag_scheme)
    eval_raw = read_split(config, task, "validation")
    task.check_labels(eval_raw, labels, eval_source(config))
    model, tokenizer = load_pretrained(
        task.auto_model_class_name, config.model_name_or_path, labels
    )
    with accelerator.main_process_first():
        eval_data = task.tokenize(
            eval_raw, tokenizer, model.config.label2id, config.max_seq_length, False
        )
    report_truncation(task, config.max_seq_length, 0, eval_raw)
    trainer = AccelerateTrainer(
        model, tokenizer, run_config, task, eval_data=eval_data, accelerator=accelerator
    )
    metrics = trainer.evaluate()
    trainer.write_results(run_config.output_dir, metrics)
    if accelerator.is_main_process:
        print(json.dumps(metrics, indent=2))
    return metrics


def check_output_dir(output_dir: str, config: TrainConfig) -> None:
    """Refuse to overwrite a saved model, except with --overwrite_output_dir or a demo rerun."""
    if not os.path.isdir(output_dir) or config.overwrite_output_dir:
        return
    present = [name for name in MODEL_FILES if os.path.exists(os.path.join(output_dir, name))]
    if not present:
        return
    if config.is_demo and is_demo_output(output_dir):
        return
    raise ConfigError(
        f"--output_dir already holds a model: got {output_dir!r} (has {', '.join(present)}). "
        "Choose another folder, or pass --overwrite_output_dir to replace it."
    )


def is_demo_output(output_dir: str) -> bool:
    """Whether output_dir was written by an earlier no-argument demo run."""
    path = os.path.join(output_dir, "training_config.json")
    try:
        with open(path, encoding="utf-8") as handle:
            saved = json.load(handle)
    except (OSError, ValueError):
        return False
    data_keys = ("train_file", "validation_file", "dataset_name")
    return all(saved.get(key) is None for key in data_keys)


def read_train_and_eval(config: TrainConfig, task, accelerator):
    """The raw train and eval splits; the demo corpus is written first when no data is given."""
    if config.is_demo:
        from accel_trainer.tasks.demo import write_demo_corpus

        folder = os.path.join(config.resolved_output_dir(), "data")
        with accelerator.main_process_first():
            if accelerator.is_local_main_process:
                write_demo_corpus(folder)
        logger.info("No data given: training on the demo corpus written to %s", folder)
        demo_train = os.path.join(folder, "train.conll")
        demo_eval = os.path.join(folder, "dev.conll")
        train_raw = task.read(demo_train, "demo train file", "conll", config.tag_scheme)
        eval_raw = task.read(demo_eval, "demo validation file", "conll", config.tag_scheme)
        return train_raw, eval_raw
    train_raw = read_split(config, task, "train")
    eval_raw = None
    if config.validation_file is not None or config.dataset_name is not None:
        eval_raw = read_split(config, task, "validation")
    return train_raw, eval_raw


def read_split(config: DataConfig, task, split: str):
    if config.dataset_name is not None:
        return task.read_hub(
            config.dataset_name, config.dataset_config_name, split, config.tag_scheme
        )
    if split == "train":
        return task.read(config.train_file, "--train_file", config.data_format, config.tag_scheme)
    return task.read(
        config.validation_file, "--validation_file", config.data_format, config.tag_scheme
    )


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


def report_truncation(task, max_seq_length: int, num_train: int, eval_raw) -> None:
    for split, total in (("train", num_train), ("eval", len(eval_raw) if eval_raw else 0)):
        count = task.truncated.get(split, 0)
        if count:
            logger.warning(
                "%d of %d %s sentences are longer than --max_seq_length %d sub-tokens and were "
                "truncated; raise --max_seq_length to keep them whole.",
                count,
                total,
                split,
                max_seq_length,
            )


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


__all__ = ["DataError", "evaluate", "train"]
