"""The subcommands, top to bottom: validate, read data, build the model, run the trainer."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields

from accel_trainer.checkpoint import file_digest, lock_output_dir, release_output_dir
from accel_trainer.config import (
    DataConfig,
    EvalConfig,
    PredictConfig,
    RunConfig,
    TrainConfig,
    validate,
)
from accel_trainer.errors import ConfigError, DataError
from accel_trainer.model_card import write_model_card
from accel_trainer.models import (
    add_marker_tokens,
    build_tiny_bert,
    build_wordpiece_tokenizer,
    check_model_source,
    check_sequence_length,
    load_pretrained,
    saved_config,
)
from accel_trainer.preprocessing import tokenize_once_per_node

logger = logging.getLogger("accel_trainer")
MODEL_FILES = ("config.json", "model.safetensors", "pytorch_model.bin", "all_results.json")
DEMO_MARKER = ".accel_trainer_demo"  # in output folders written by demo runs
DEMO_NEGATIVE_LABEL = "no_relation"


def train(config: TrainConfig) -> dict:
    """`accel-trainer train`: fine-tune on the given data (or the demo corpus) and save."""
    trainer = build_trainer(config)
    results = trainer.fit()
    if trainer.accelerator.is_main_process:  # the only process that saved
        if config.is_demo:
            open(os.path.join(trainer.output_dir, DEMO_MARKER), "w").close()
        labels = [trainer.id2label[i] for i in sorted(trainer.id2label)]
        write_model_card(trainer.output_dir, config, results, labels, data_files(config))
        print(f"Saved the model and all_results.json to {trainer.output_dir}")
        print(json.dumps(results, indent=2))
    return results


def build_trainer(config: TrainConfig):
    """Everything before training: checks, data, tokenizer, model, then the trainer."""
    validate(config)
    check_output_dir(config.resolved_output_dir(), config)
    if not config.is_tiny_bert:
        check_model_source(config.model_name_or_path)
    from accel_trainer.tasks import task_for_training
    from accel_trainer.trainer import check_same_on_every_process, create_accelerator

    accelerator = create_accelerator(config)
    quiet_other_ranks(accelerator.is_main_process)
    task = task_for_training(config)
    if config.is_demo and task.name == "re" and task.negative_label is None:
        task.negative_label = DEMO_NEGATIVE_LABEL
    train_raw, eval_raw = read_train_and_eval(config, task, accelerator)
    labels = config.label_names or task.label_list(train_raw)
    check_labels(config, task, labels, train_raw, eval_raw)
    if task.name == "re":
        task.find_entity_types(train_raw)
    # What every process must agree on; hashing the data files only pays off with company.
    if accelerator.num_processes > 1:
        identity = {
            "options": config.to_dict(),
            "labels": labels,
            "data files": data_digests(config),
        }
        check_same_on_every_process(accelerator, identity)

    # Before the heavy work: a second run on the same folder stops here.
    output_dir = config.resolved_output_dir()
    output_lock = lock_output_dir(output_dir) if accelerator.is_main_process else None
    try:
        trainer = build_model_and_trainer(config, accelerator, task, labels, train_raw, eval_raw)
    except BaseException:
        release_output_dir(output_lock)
        raise
    trainer.output_lock = output_lock
    return trainer


def build_model_and_trainer(config: TrainConfig, accelerator, task, labels, train_raw, eval_raw):
    """Tokenizer, model and tokenized data (cached, once per machine), then the trainer."""
    from accelerate.utils import set_seed

    from accel_trainer.trainer import AccelerateTrainer

    set_seed(config.seed)  # before the model: its new head (or all of tiny-bert) is random
    if config.is_tiny_bert:
        tokenizer = build_wordpiece_tokenizer(
            task.words(train_raw), model_max_length=max(512, config.max_seq_length)
        )
        model = build_tiny_bert(
            task.auto_model_class_name, len(tokenizer), labels, config.max_seq_length
        )
    else:
        model, tokenizer = load_pretrained(
            task.auto_model_class_name, config.model_name_or_path, labels, task.name
        )
    check_sequence_length(config.max_seq_length, model, tokenizer)
    if task.name == "re":
        add_marker_tokens(tokenizer, model, task.marker_tokens())
    model.config.accel_trainer = task.settings()
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
    data_stats = report_lengths(task, config.max_seq_length, len(train_raw), eval_raw)
    return AccelerateTrainer(
        model,
        tokenizer,
        config,
        task,
        train_data,
        eval_data,
        accelerator=accelerator,
        extra_results={"train_samples": len(train_raw), **data_stats},
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


def data_files(config: TrainConfig) -> dict[str, str | None]:
    """Where the training and evaluation data came from, for the model card."""
    if config.is_demo:
        folder = os.path.join(config.resolved_output_dir(), "data")
        train_path, eval_path = demo_paths(folder, config.task)
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
    negative = getattr(task, "negative_label", None)
    if negative is not None and negative not in labels:
        raise ConfigError(
            f"--negative_label is not among the labels: got {negative!r}, labels {labels}. "
            "Give one of them (e.g. Other or no_relation), or leave it out."
        )


def load_saved(config: RunConfig):
    """Accelerator, task, model and tokenizer of a folder saved by `train`."""
    from accel_trainer.tasks import task_from_settings
    from accel_trainer.trainer import create_accelerator

    check_model_source(config.model_name_or_path, saved_by_us=True)
    labels, settings = saved_config(config.model_name_or_path)
    task = task_from_settings(settings, config.model_name_or_path)
    if getattr(config, "negative_label", None) is not None:
        task.negative_label = config.negative_label
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
    run_config, accelerator, task, labels = load_saved(config)
    eval_raw = read_split(config, task, "validation")
    task.check_labels(eval_raw, labels, eval_source(config))
    if getattr(task, "negative_label", None) not in (None, *labels):
        raise ConfigError(
            f"--negative_label is not among the model's labels: got {task.negative_label!r}, "
            f"labels {labels}."
        )
    model, tokenizer = load_pretrained(
        task.auto_model_class_name, config.model_name_or_path, labels, task.name
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
    stats = report_lengths(task, config.max_seq_length, 0, eval_raw)
    from accel_trainer.trainer import AccelerateTrainer

    trainer = AccelerateTrainer(
        model, tokenizer, run_config, task, eval_data=eval_data, accelerator=accelerator
    )
    metrics = {**trainer.evaluate(), **stats}
    trainer.write_results(run_config.output_dir, metrics)
    if accelerator.is_main_process:
        print(json.dumps(metrics, indent=2))
    return metrics


def predict(config: PredictConfig) -> int:
    """`accel-trainer predict`: label a file with a saved model; output in input order."""
    validate(config)
    run_config, accelerator, task, labels = load_saved(config)
    try:
        raw = task.read(config.input_file, "--input_file", config.data_format, labelled=False)
    except DataError as error:
        raise DataError(
            f"{error} The model at {config.model_name_or_path} does task {task.name!r}: give "
            "--input_file in a format of that task."
        ) from None
    check_writable(config.output_file)
    model, tokenizer = load_pretrained(
        task.auto_model_class_name, config.model_name_or_path, labels, task.name
    )
    check_sequence_length(config.max_seq_length, model, tokenizer)

    def encode(options: dict):
        if task.name == "ner":
            return task.encode_windows(raw, tokenizer, config.max_seq_length, None, options)
        return task.tokenize(raw, tokenizer, None, config.max_seq_length, False, options)

    data = tokenize_once_per_node(
        accelerator,
        "predict",
        encode,
        {**tokenization_parts(config, task, tokenizer, None), "data": raw._fingerprint},
        config.preprocessing_num_workers,
        config.overwrite_cache,
    )
    from accel_trainer.predictions import write_predictions
    from accel_trainer.trainer import AccelerateTrainer

    trainer = AccelerateTrainer(model, tokenizer, run_config, task, accelerator=accelerator)
    rows = trainer.predict(data)
    if accelerator.is_main_process:
        write_predictions(task, raw, rows, model.config.id2label, config)
        print(f"Wrote {len(raw)} predictions to {config.output_file}")
    accelerator.wait_for_everyone()
    return len(raw)


def check_writable(path: str) -> None:
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ConfigError(
            f"--output_file is in a folder that does not exist: got {path!r}. Create the folder "
            "first."
        )
    if os.path.isdir(path):
        raise ConfigError(f"--output_file is a folder: got {path!r}. Name a file.")


def check_output_dir(output_dir: str, config: TrainConfig) -> None:
    """Refuse to overwrite a saved model, except with --overwrite_output_dir or a demo rerun."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(
            f"--output_dir is a file, not a folder: got {output_dir!r}. Name a folder."
        )
    if not os.path.isdir(output_dir) or config.overwrite_output_dir:
        return
    from accel_trainer.checkpoint import committed_checkpoints

    checkpoints = committed_checkpoints(output_dir)
    if checkpoints and not config.resume_from_checkpoint:
        raise ConfigError(
            f"--output_dir holds checkpoints of an earlier run: got {output_dir!r} (newest "
            f"{os.path.basename(checkpoints[-1][1])}). Pass --resume_from_checkpoint auto to "
            "continue it, or --overwrite_output_dir to start over (its checkpoints are deleted)."
        )
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
    """Whether output_dir was written by an earlier demo run (on the built-in corpus)."""
    return os.path.isfile(os.path.join(output_dir, DEMO_MARKER))


def read_train_and_eval(config: TrainConfig, task, accelerator):
    """The raw train and eval splits; the demo corpus is written first when no data is given."""
    if config.is_demo:
        from accel_trainer.tasks.demo import write_demo_corpus, write_demo_re_corpus

        folder = os.path.join(config.resolved_output_dir(), "data")
        write = write_demo_re_corpus if task.name == "re" else write_demo_corpus
        with accelerator.main_process_first():
            if accelerator.is_local_main_process:
                write(folder)
        demo_train, demo_eval = demo_paths(folder, task.name)
        logger.info("No data given: training on the demo corpus written to %s", folder)
        train_raw = task.read(demo_train, "demo train file", "auto")
        eval_raw = task.read(demo_eval, "demo validation file", "auto")
        return train_raw, eval_raw
    train_raw = read_split(config, task, "train")
    eval_raw = None
    if config.validation_file is not None or config.dataset_name is not None:
        eval_raw = read_split(config, task, "validation")
    return train_raw, eval_raw


def demo_paths(folder: str, task_name: str) -> tuple[str, str]:
    suffix = "jsonl" if task_name == "re" else "conll"
    return os.path.join(folder, f"train.{suffix}"), os.path.join(folder, f"dev.{suffix}")


def read_split(config: DataConfig, task, split: str):
    if config.dataset_name is not None:
        if task.name != "ner":
            raise ConfigError(
                "--dataset_name is supported for --task ner only: give --train_file and "
                "--validation_file for relation extraction."
            )
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


def report_lengths(task, max_seq_length: int, num_train: int, eval_raw) -> dict:
    """Log and return how many examples did not fit in max_seq_length, and what became of
    them: NER training truncates, NER evaluation windows, RE drops."""
    num_eval = len(eval_raw) if eval_raw is not None else 0
    if task.name == "ner":
        stats = {
            "train_truncated_sentences": task.truncated.get("train", 0),
            "eval_windowed_sentences": task.long_sentences,
        }
        what = {
            "train_truncated_sentences": f"of {num_train} training sentences were truncated",
            "eval_windowed_sentences": f"of {num_eval} eval sentences are scored in sliding "
            "windows, every word counted",
        }
    else:
        stats = {
            "train_dropped_examples": task.dropped.get("train", 0),
            "eval_dropped_examples": task.dropped.get("eval", 0),
        }
        what = {
            "train_dropped_examples": f"of {num_train} training examples were dropped: their "
            "entities lie too far apart",
            "eval_dropped_examples": f"of {num_eval} eval examples were dropped (and are not "
            "scored): their entities lie too far apart",
        }
    for key, count in stats.items():
        if count:
            logger.warning(
                "%d %s for --max_seq_length %d; raise it to keep them.",
                count,
                what[key],
                max_seq_length,
            )
    return stats


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
