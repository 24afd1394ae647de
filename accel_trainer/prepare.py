"""From options to what a run needs: data read and checked, labels, tokenizer and model built (or
loaded from a saved folder), splits tokenized once per machine, the checkpoint to resume from.
`AccelerateTrainer.from_files`, `accel-trainer train`, `evaluate` and `predict` all come here."""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from accel_trainer.config import TrainConfig, validate
from accel_trainer.errors import ConfigError, DataError, OutputError
from accel_trainer.hub import check_dataset_access, model_access
from accel_trainer.lora import apply_lora, base_weights, is_adapter_folder, load_adapter_folder
from accel_trainer.models import (
    build_tiny_bert,
    build_wordpiece_tokenizer,
    check_model_source,
    check_sequence_length,
    load_pretrained,
    load_saved_model,
    saved_config,
)
from accel_trainer.preprocessing import (
    task_fingerprint,
    tokenize_once_per_node,
    tokenizer_fingerprint,
)
from accel_trainer.runtime import (
    check_same_on_every_process,
    seed_everything,
    training_accelerator,
)
from accel_trainer.storage.commit import final_model_problem, touch, write_atomically
from accel_trainer.storage.hashing import file_digest
from accel_trainer.storage.lock import OutputLock
from accel_trainer.storage.output_folder import DEMO_MARKER, check_output_dir, claim_output_folder
from accel_trainer.storage.write_policy import create_new
from accel_trainer.tasks import task_for_training, task_from_settings
from accel_trainer.tasks.demo import demo_defaults, demo_files, demo_texts
from accel_trainer.tasks.registry import get_task
from accel_trainer.tasks.wording import count_text, example_word
from accel_trainer.train.batching import check_layout_request
from accel_trainer.train.resume import ResumePoint, plan_resume

if TYPE_CHECKING:
    from accelerate import Accelerator
    from datasets import Dataset

    from accel_trainer.config import EvalConfig, PredictConfig
    from accel_trainer.data_options import EvalDataOptions, InputOptions
    from accel_trainer.tasks.base import Task

logger = logging.getLogger("accel_trainer")


@dataclass
class PreparedRun:
    """Everything AccelerateTrainer takes, ready: the output folder locked for this run."""

    accelerator: Accelerator
    task: Task
    model: Any
    tokenizer: Any
    train_data: Dataset
    eval_data: Dataset | None
    identity: dict  # what a resumed run must share with this one
    resume: ResumePoint | None
    extra_results: dict
    data_files: dict[str, str | None]
    output_lock: OutputLock


def prepare_training(config: TrainConfig, task: Task | None = None) -> PreparedRun:
    """Check the options and the output folder, read the data (the demo corpus without data
    options), build tokenizer and model, tokenize; `task`: an instance to use instead of the
    registered `config.task`, configured from `config.task_options`."""
    validate(config)
    output_dir = config.resolved_output_dir()
    check_output_dir(output_dir, config)
    if not config.is_tiny_bert:
        check_model_source(config.model_name_or_path)
    accelerator = training_accelerator(config)
    quiet_other_ranks(accelerator.is_main_process)
    # Before the data is read: a hub that does not answer stops the run here, in seconds.
    local_files_only = not config.is_tiny_bert and model_access(config.model_name_or_path)
    if config.data.dataset_name is not None:
        check_dataset_access(config.data.dataset_name)
    if task is not None and not isinstance(task, get_task(config.task)):
        raise ConfigError(
            f"task is not a task of --task {config.task}: got a {type(task).__name__}. Pass an "
            f"instance of {get_task(config.task).__name__}, or set task= in the config to the "
            "registered name of yours."
        )
    task = task or task_for_training(config.task, config.task_options)
    check_layout_request(config.batching, task.token_level_labels)
    if config.is_demo:
        demo_defaults(task)
    train_raw, eval_raw = read_train_and_eval(config, task, accelerator)
    labels = config.data.label_names or task.label_list(train_raw)
    check_labels(config, task, labels, train_raw, eval_raw)
    check_metric_name(config, task, labels)
    task.learn_from_training_data(train_raw)
    # Cut after the labels are known, as run_ner.py does: the first examples may lack some.
    train_raw = first_examples(train_raw, config.data.max_train_samples, "max_train_samples")
    if eval_raw is not None:
        eval_raw = first_examples(eval_raw, config.data.max_eval_samples, "max_eval_samples")
    identity = {"labels": labels, "data files": data_digests(config.data)}
    if config.peft.uses_lora:  # its checkpoints hold no frozen weights: the base must not change
        identity["base model weights"] = base_weights(config.model_name_or_path)
    check_same_on_every_process(accelerator, {"options": config.to_dict(), **identity})
    # Before the heavy work: a second run on the same folder stops here.
    output_lock = OutputLock(output_dir, accelerator.is_main_process)
    claim_output_folder(accelerator, output_lock, config, config.is_demo, finish_save=True)
    try:
        resume = plan_resume(accelerator, config, identity)
        model, tokenizer = build_model(config, task, labels, train_raw, local_files_only)
        label2id = model.config.label2id
        max_length = config.data.max_seq_length

        def encode(raw, for_training: bool) -> Callable[[dict], Dataset]:
            return lambda map_options: task.tokenize(
                raw, tokenizer, label2id, max_length, for_training, map_options
            )

        train_data = tokenized(accelerator, task, tokenizer, label2id, config.data, "train",
                               train_raw, encode(train_raw, True))  # fmt: skip
        eval_data = None
        if eval_raw is not None:
            eval_data = tokenized(accelerator, task, tokenizer, label2id, config.data, "eval",
                                  eval_raw, encode(eval_raw, False))  # fmt: skip
    except BaseException:
        output_lock.release()
        raise
    stats = task.length_report(max_length, len(train_raw), eval_raw)
    # The examples trained on, as eval_samples counts those scored: a dropped one is neither.
    results = {"train_samples": len(train_data), **stats}
    for option in ("max_train_samples", "max_eval_samples"):
        if getattr(config.data, option):
            results[option] = getattr(config.data, option)
    return PreparedRun(
        accelerator, task, model, tokenizer, train_data, eval_data, identity, resume, results,
        data_files(config, task), output_lock,
    )  # fmt: skip


def build_model(
    config: TrainConfig, task: Task, labels: list[str], train_raw, local_files_only: bool = False
):
    """The model and tokenizer to fine-tune: pretrained, or tiny-bert built for the data; the
    task prepares them (RE: its marker tokens); with --peft lora, wrapped by peft.
    `local_files_only`: from the local cache, the hub being unreachable."""
    seed_everything(config.runtime.seed)  # before the model: its new head (or all) is random
    max_length = config.data.max_seq_length
    if config.is_tiny_bert:
        tokenizer = build_wordpiece_tokenizer(
            task.words(train_raw), model_max_length=max(512, max_length)
        )
        model = build_tiny_bert(task.auto_model_class_name, len(tokenizer), labels, max_length)
    else:
        model, tokenizer = load_pretrained(
            task.auto_model_class_name,
            config.model_name_or_path,
            labels,
            task.tokenizer_options,
            local_files_only,
        )
    check_sequence_length(max_length, model, tokenizer)
    task.prepare_model(model, tokenizer)
    if config.peft.uses_lora:  # here, so that a bad --lora_target_modules stops before tokenizing
        model = apply_lora(model, tokenizer, task.new_tokens(), config.peft)
    return model, tokenizer


def tokenized(
    accelerator: Accelerator,
    task: Task,
    tokenizer,
    label2id: dict | None,
    options: InputOptions,
    split: str,
    raw: Dataset,
    encode: Callable[[dict], Dataset],
) -> Dataset:
    """`encode(map_options)` run once per machine and cached under a fingerprint of everything
    that shapes the rows: the data, the task, the tokenizer, the labels and the length."""
    parts = {
        "task": task_fingerprint(task),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "label2id": label2id,
        "max_seq_length": options.max_seq_length,
        "data": raw._fingerprint,
    }
    return tokenize_once_per_node(
        accelerator,
        split,
        encode,
        parts,
        options.preprocessing_num_workers,
        options.overwrite_cache,
        count_text=lambda rows: count_text(task, len(raw), rows),
    )


@dataclass
class SavedModel:
    """A folder `train` saved, loaded for evaluate or predict."""

    task: Task
    labels: list[str]
    model: Any
    tokenizer: Any


def load_saved(config: EvalConfig | PredictConfig, overrides: dict) -> SavedModel:
    """The task, labels, model and tokenizer of the folder `train` saved that an evaluate or
    predict config names, each checked; `overrides` replace settings of the saved task (NER:
    tag_scheme, RE: negative_label)."""
    model_dir = config.model_name_or_path
    if os.path.isdir(model_dir):  # an interrupted or damaged save, before reading any of it
        problem = final_model_problem(model_dir)
        if problem is not None:
            raise ConfigError(f"--model_name_or_path cannot be used: got {model_dir!r}; {problem}.")
    check_model_source(model_dir, saved_by_us=True)
    labels, settings = saved_config(model_dir)
    task = task_from_settings(settings, model_dir)
    task.apply_run_options(overrides, model_dir)
    data_format = config.data.data_format
    if data_format not in task.data_formats:
        raise ConfigError(
            f"--data_format is not a format of the model's task {task.name!r}: got "
            f"{data_format!r}. Use one of {list(task.data_formats)}."
        )
    if is_adapter_folder(model_dir):
        model, tokenizer = load_adapter_folder(
            task.auto_model_class_name, model_dir, labels, settings, task.tokenizer_options
        )
    else:
        model, tokenizer = load_saved_model(
            task.auto_model_class_name, model_dir, task.tokenizer_options
        )
    check_sequence_length(config.data.max_seq_length, model, tokenizer)
    return SavedModel(task, labels, model, tokenizer)


def check_metric_name(config: TrainConfig, task: Task, labels: list[str]) -> None:
    """Refuse a --metric_for_best_model the task never computes, before training."""
    name = config.evaluation.metric_for_best_model
    if name is None:
        return
    known = [f"eval_{metric}" for metric in [*task.metric_names(labels), "loss"]]
    if name not in known:
        raise ConfigError(
            f"--metric_for_best_model is not an eval metric of this task: got {name!r}. Use one "
            f"of {known}."
        )


def check_labels(config: TrainConfig, task: Task, labels, train_raw, eval_raw) -> None:
    seen = task.label_list(train_raw) if config.data.label_names else labels
    if len(seen) == 1:
        raise DataError(
            f"{train_source(config.data)} has one label only: got {seen[0]!r} on every "
            f"{example_word(task)}. A model trained on it predicts {seen[0]!r} for everything: "
            "give training data with at least two different labels."
        )
    if config.data.label_names:
        task.check_labels(train_raw, labels, train_source(config.data), "not in --label_names")
    if eval_raw is not None:
        task.check_labels(eval_raw, labels, eval_source(config.data))
    task.check_label_options(labels)


def data_files(config: TrainConfig, task: Task) -> dict[str, str | None]:
    """Where the training and evaluation data came from, for the model card."""
    data = config.data
    if config.is_demo:
        train_path, eval_path = demo_files(task, demo_folder(config))
        return {"train (demo corpus)": train_path, "eval (demo corpus)": eval_path}
    if data.dataset_name is not None:
        name = " ".join(filter(None, [data.dataset_name, data.dataset_config_name]))
        return {"train and eval": name}
    return {"train": data.train_file, "eval": data.validation_file}


def data_digests(data: EvalDataOptions) -> dict:
    """What identifies the data each process reads: file contents, or the dataset's name."""
    digests = {
        option: file_digest(path) for option, path in data.data_files().items() if path is not None
    }
    if data.dataset_name is not None:
        digests["dataset_name"] = [data.dataset_name, data.dataset_config_name]
    return digests


def demo_folder(config: TrainConfig) -> str:
    return os.path.join(config.resolved_output_dir(), "data")


def read_train_and_eval(config: TrainConfig, task: Task, accelerator: Accelerator):
    """The raw train and eval splits; the demo corpus is written first when no data is given."""
    if not config.is_demo:
        train_raw = read_split(config.data, task, "train")
        eval_raw = None
        if config.data.validation_file is not None or config.data.dataset_name is not None:
            eval_raw = read_split(config.data, task, "validation")
        return train_raw, eval_raw
    output_dir, folder = config.resolved_output_dir(), demo_folder(config)
    demo_train, demo_eval = demo_files(task, folder)
    texts = dict(zip((demo_train, demo_eval), demo_texts(task), strict=True))
    check_demo_data(folder, texts, config.overwrite_output_dir)
    with accelerator.main_process_first():
        if accelerator.is_local_main_process:
            # Marked first: an interrupted demo run's folder stays one a demo may rewrite.
            os.makedirs(output_dir, exist_ok=True)
            touch(os.path.join(output_dir, DEMO_MARKER))
            if os.path.islink(folder):
                os.unlink(folder)  # the demo's own data/ is a folder here, never a link
            os.makedirs(folder, exist_ok=True)
            for path, text in texts.items():
                write_demo_file(path, text, config.overwrite_output_dir)
    logger.info("No data given: training on the demo corpus written to %s", folder)
    train_raw = task.read(demo_train, "demo train file", "auto")
    eval_raw = task.read(demo_eval, "demo validation file", "auto")
    return train_raw, eval_raw


def demo_file_text(path: str) -> str | None:
    """The text of a demo data file as it is on disk; None when it is not a readable file
    (never opened when it is no regular file: a named pipe would block)."""
    if not os.path.isfile(path):
        return None
    try:
        with open(path, encoding="utf-8", newline="") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError):
        return None


def check_demo_data(folder: str, texts: dict[str, str], overwrite: bool) -> None:
    """Refuse to replace what is in the way of the demo's data files: a file where its folder
    goes, a folder where a file goes, or a file that differs from the demo's (a user added
    sentences there) unless --overwrite_output_dir says to. A link at `folder` is replaced by
    a folder of the demo's own; what it points to is never looked at."""
    if os.path.islink(folder):
        return
    if os.path.lexists(folder) and not os.path.isdir(folder):
        raise ConfigError(
            f"--output_dir has a file where the demo's data folder goes: got {folder!r}. Move it "
            "away, or choose another --output_dir."
        )
    for path, text in texts.items():
        if os.path.isdir(path) and not os.path.islink(path):
            raise ConfigError(
                f"--output_dir has a folder where the demo's data file goes: got {path!r}. Move "
                "it away, or choose another --output_dir."
            )
        if overwrite or not os.path.lexists(path) or demo_file_text(path) == text:
            continue
        if not os.path.isfile(path):
            raise ConfigError(
                f"--output_dir has something that is no regular file where the demo's data file "
                f"goes: got {path!r} (a named pipe, a device or a link to nothing). Move it "
                "away, or choose another --output_dir."
            )
        raise ConfigError(
            f"the demo's data file differs from the demo corpus (edited, or not written by the "
            f"demo): got {path!r}. The demo never replaces it: train on it with --train_file "
            f"{path} (and --validation_file), or pass --overwrite_output_dir to write the demo "
            "corpus again."
        )


def write_demo_file(path: str, text: str, overwrite: bool) -> None:
    """Write a demo data file, unless it holds the demo's text already; one that appears
    meanwhile is kept unless it is the same (another machine's demo wrote it)."""
    if demo_file_text(path) == text:
        return
    if overwrite:
        write_atomically(path, text)
        return
    try:
        create_new(path, text, "the demo's data file")
    except OutputError:
        if demo_file_text(path) != text:
            raise


def read_split(data: EvalDataOptions, task: Task, split: str):
    if data.dataset_name is not None:
        raw = task.read_hub(data.dataset_name, data.dataset_config_name, split)
    elif split == "train":
        raw = task.read(data.train_file, "--train_file", data.data_format)
    else:
        raw = task.read(data.validation_file, "--validation_file", data.data_format)
    return raw


def first_examples(raw: Dataset, limit: int, option: str) -> Dataset:
    """The first `limit` examples (0: all), as run_ner.py's --max_train_samples cuts them."""
    if not limit:
        return raw
    if limit >= len(raw):
        logger.info("--%s %d: using all %d examples (there are no more)", option, limit, len(raw))
        return raw
    logger.info("--%s %d: using the first %d of %d examples", option, limit, limit, len(raw))
    return raw.select(range(limit))


def train_source(data: EvalDataOptions) -> str:
    if data.dataset_name:
        return f"--dataset_name {data.dataset_name} split 'train'"
    return f"--train_file {data.train_file}" if data.train_file else "demo train file"


def eval_source(data: EvalDataOptions) -> str:
    if data.dataset_name:
        return f"--dataset_name {data.dataset_name} split 'validation'"
    if data.validation_file:
        return f"--validation_file {data.validation_file}"
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
