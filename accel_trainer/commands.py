"""The subcommands, top to bottom: validate, read data, build the model, run the trainer."""

from __future__ import annotations

import json
import logging
import os
from dataclasses import fields

from accel_trainer.checkpoint import (
    LOCK_FILE,
    MODEL_MANIFEST,
    MODEL_TEMP,
    RUN_MARKER,
    committed_checkpoints,
    file_digest,
    final_model_problem,
    final_model_step,
    finish_final_model,
    lock_output_dir,
    model_files_present,
    model_manifest,
    release_output_dir,
    touch,
    why_unwritable,
    write_atomically,
)
from accel_trainer.config import (
    BatchingOptions,
    DataOptions,
    EvalConfig,
    InputOptions,
    PredictConfig,
    TrainConfig,
    validate,
)
from accel_trainer.errors import ConfigError, DataError, OutputError
from accel_trainer.model_card import write_model_card
from accel_trainer.models import (
    TOKENIZER_FILES,
    add_marker_tokens,
    build_tiny_bert,
    build_wordpiece_tokenizer,
    check_model_source,
    check_sequence_length,
    load_pretrained,
    load_saved_model,
    saved_config,
    vocabulary_digest,
)
from accel_trainer.preprocessing import tokenize_once_per_node
from accel_trainer.resume import on_main_then_share, plan_resume

logger = logging.getLogger("accel_trainer")
DEMO_MARKER = ".accel_trainer_demo"  # in output folders written by demo runs
# What a run writes at the top of its output folder, besides the model and its checkpoints.
RUN_OUTPUTS = (
    *TOKENIZER_FILES,
    "special_tokens_map.json",
    "added_tokens.json",
    "README.md",
    "training_config.json",
    "log_history.jsonl",
    MODEL_MANIFEST,
    "runs",
)
DEMO_NEGATIVE_LABEL = "no_relation"


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
    from accel_trainer.tasks import task_for_training
    from accel_trainer.trainer import check_same_on_every_process, create_accelerator

    accelerator = create_accelerator(config)
    quiet_other_ranks(accelerator.is_main_process)
    task = task_for_training(config)
    if config.is_demo and task.name == "re" and task.negative_label is None:
        task.negative_label = DEMO_NEGATIVE_LABEL
    train_raw, eval_raw = read_train_and_eval(config, task, accelerator)
    labels = config.data.label_names or task.label_list(train_raw)
    check_labels(config, task, labels, train_raw, eval_raw)
    check_metric_name(config, task, labels)
    if task.name == "re":
        task.find_entity_types(train_raw)
    # What a resumed run must share with the run it continues, and every process with the rest.
    identity = {"labels": labels, "data files": data_digests(config)}
    if accelerator.num_processes > 1:
        check_same_on_every_process(accelerator, {"options": config.to_dict(), **identity})

    # Before the heavy work: a second run on the same folder stops here.
    output_dir = config.resolved_output_dir()
    output_lock = lock_output_dir(output_dir) if accelerator.is_main_process else None
    try:
        # Again, now that no other run can change the folder: one may have finished meanwhile.
        on_main_then_share(accelerator, lambda: check_output_dir(output_dir, config))
        finish_interrupted_save(accelerator, output_dir)
        if accelerator.is_main_process:
            mark_output_dir(output_dir, config.is_demo)
        resume = plan_resume(accelerator, config, identity)
        trainer = build_model_and_trainer(
            config, accelerator, task, labels, train_raw, eval_raw, resume, identity
        )
    except BaseException:
        release_output_dir(output_lock)
        raise
    trainer.output_lock = output_lock
    return trainer


class SaveFinished(Exception):
    """A run whose final save was interrupted while moving into place, now finished: nothing
    is left to train."""

    def __init__(self, output_dir: str, step: int):
        super().__init__(
            f"Finished the interrupted final save of step {step}: {output_dir} holds the model, "
            "and no checkpoint is newer. Nothing is left to train."
        )
        path = os.path.join(output_dir, "all_results.json")
        with open(path, encoding="utf-8") as handle:
            self.results = json.load(handle)


def finish_interrupted_save(accelerator, output_dir: str) -> None:
    """Complete a final save that was interrupted while its files moved into place (the main
    process moves them); SaveFinished when that leaves nothing to train."""
    moved = accelerator.is_main_process and finish_final_model(output_dir)
    accelerator.wait_for_everyone()
    if accelerator.num_processes > 1:
        from accelerate.utils import broadcast_object_list

        [moved] = broadcast_object_list([moved])
    if not moved:
        return
    logger.warning("moved the final model of an interrupted save into place in %s", output_dir)
    step = final_model_step(output_dir)
    newest = max((found for found, _ in committed_checkpoints(output_dir)), default=-1)
    if step is not None and newest <= step:
        raise SaveFinished(output_dir, step)


def mark_output_dir(output_dir: str, is_demo: bool) -> None:
    """Say that this program writes into output_dir (so its files are ours to replace on a
    rerun), and whether a later demo run may replace them."""
    touch(os.path.join(output_dir, RUN_MARKER))
    demo_marker = os.path.join(output_dir, DEMO_MARKER)
    if not is_demo and os.path.lexists(demo_marker):
        os.unlink(demo_marker)  # your run's folder now: a later demo run must not replace it


def check_metric_name(config: TrainConfig, task, labels: list[str]) -> None:
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


def build_model_and_trainer(
    config: TrainConfig, accelerator, task, labels, train_raw, eval_raw, resume, identity
):
    """Tokenizer, model and tokenized data (cached, once per machine), then the trainer."""
    from accelerate.utils import set_seed

    from accel_trainer.trainer import AccelerateTrainer

    set_seed(config.runtime.seed)  # before the model: its new head (or all of tiny-bert) is random
    if config.is_tiny_bert:
        tokenizer = build_wordpiece_tokenizer(
            task.words(train_raw), model_max_length=max(512, config.data.max_seq_length)
        )
        model = build_tiny_bert(
            task.auto_model_class_name, len(tokenizer), labels, config.data.max_seq_length
        )
    else:
        model, tokenizer = load_pretrained(
            task.auto_model_class_name, config.model_name_or_path, labels, task.name
        )
    check_sequence_length(config.data.max_seq_length, model, tokenizer)
    if task.name == "re":
        add_marker_tokens(tokenizer, model, task.marker_tokens())
    model.config.accel_trainer = {
        **task.settings(),
        "tokenizer_size": len(tokenizer),
        "tokenizer_vocab": vocabulary_digest(tokenizer),  # checked by evaluate and predict
    }
    label2id = model.config.label2id
    parts = tokenization_parts(config, task, tokenizer, label2id)

    def tokenized(raw, split: str):
        return tokenize_once_per_node(
            accelerator,
            split,
            lambda options: task.tokenize(
                raw, tokenizer, label2id, config.data.max_seq_length, split == "train", options
            ),
            {**parts, "data": raw._fingerprint},
            config.data.preprocessing_num_workers,
            config.data.overwrite_cache,
        )

    train_data = tokenized(train_raw, "train")
    eval_data = tokenized(eval_raw, "eval") if eval_raw is not None else None
    data_stats = report_lengths(task, config.data.max_seq_length, len(train_raw), eval_raw)

    def write_card(folder: str, results: dict) -> None:
        write_model_card(folder, config, results, labels, data_files(config))

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
        write_extras=write_card,
    )


def tokenization_parts(
    config: TrainConfig | EvalConfig | PredictConfig, task, tokenizer, label2id: dict | None
) -> dict:
    """What shapes tokenized data besides the rows themselves: the tokenization cache's key."""
    from accel_trainer.preprocessing import task_fingerprint, tokenizer_fingerprint

    return {
        "task": task_fingerprint(task),
        "tokenizer": tokenizer_fingerprint(tokenizer),
        "label2id": label2id,
        "max_seq_length": config.data.max_seq_length,
    }


def data_files(config: TrainConfig) -> dict[str, str | None]:
    """Where the training and evaluation data came from, for the model card."""
    if config.is_demo:
        folder = os.path.join(config.resolved_output_dir(), "data")
        train_path, eval_path = demo_paths(folder, config.task)
        return {"train (demo corpus)": train_path, "eval (demo corpus)": eval_path}
    if config.data.dataset_name is not None:
        name = " ".join(filter(None, [config.data.dataset_name, config.data.dataset_config_name]))
        return {"train and eval": name}
    return {"train": config.data.train_file, "eval": config.data.validation_file}


def data_digests(config: TrainConfig) -> dict:
    """What identifies the data each process reads: file contents, or the dataset's name."""
    digests = {}
    for option in ("train_file", "validation_file"):
        path = getattr(config.data, option)
        if path is not None:
            digests[option] = file_digest(path)
    if config.data.dataset_name is not None:
        digests["dataset_name"] = [config.data.dataset_name, config.data.dataset_config_name]
    return digests


def check_labels(config: TrainConfig, task, labels: list[str], train_raw, eval_raw) -> None:
    if config.data.label_names:
        task.check_labels(train_raw, labels, train_source(config), "not in --label_names")
    if eval_raw is not None:
        task.check_labels(eval_raw, labels, eval_source(config))
    negative = getattr(task, "negative_label", None)
    if negative is not None and negative not in labels:
        raise ConfigError(
            f"--negative_label is not among the labels: got {negative!r}, labels {labels}. "
            "Give one of them (e.g. Other or no_relation), or leave it out."
        )


def load_saved(config: EvalConfig | PredictConfig):
    """Accelerator, task, model and tokenizer of a folder saved by `train`."""
    from accel_trainer.tasks import task_from_settings
    from accel_trainer.trainer import create_accelerator

    model_dir = config.model_name_or_path
    if os.path.isdir(model_dir):  # an interrupted or damaged save, before reading any of it
        problem = final_model_problem(model_dir)
        if problem is not None:
            raise ConfigError(f"--model_name_or_path cannot be used: got {model_dir!r}; {problem}.")
    check_model_source(model_dir, saved_by_us=True)
    labels, settings = saved_config(model_dir)
    task = task_from_settings(settings, model_dir)
    overrides = getattr(config, "task_options", None)  # evaluate's; predict has none
    if overrides is not None and overrides.negative_label is not None:
        task.negative_label = overrides.negative_label
    run_config = TrainConfig(
        model_name_or_path=config.model_name_or_path,
        config=config.config,
        data=DataOptions(**{f.name: getattr(config.data, f.name) for f in fields(InputOptions)}),
        batching=BatchingOptions(
            per_device_eval_batch_size=config.batching.per_device_eval_batch_size
        ),
        runtime=config.runtime,
    )
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
    if getattr(task, "negative_label", None) not in (None, *labels):
        raise ConfigError(
            f"--negative_label is not among the model's labels: got {task.negative_label!r}, "
            f"labels {labels}."
        )
    model, tokenizer = load_saved_model(
        task.auto_model_class_name, config.model_name_or_path, task.name
    )
    check_sequence_length(config.data.max_seq_length, model, tokenizer)
    label2id = model.config.label2id
    eval_data = tokenize_once_per_node(
        accelerator,
        "eval",
        lambda options: task.tokenize(
            eval_raw, tokenizer, label2id, config.data.max_seq_length, False, options
        ),
        {**tokenization_parts(config, task, tokenizer, label2id), "data": eval_raw._fingerprint},
        config.data.preprocessing_num_workers,
        config.data.overwrite_cache,
    )
    # Only the evaluation's own counts: a saved run's train_* fields are not this command's.
    stats = report_lengths(task, config.data.max_seq_length, 0, eval_raw)
    stats = {key: value for key, value in stats.items() if key.startswith("eval_")}
    from accel_trainer.trainer import AccelerateTrainer

    trainer = AccelerateTrainer(
        model, tokenizer, run_config, task, eval_data=eval_data, accelerator=accelerator
    )
    metrics = {**trainer.evaluate(), **stats}
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
    data = config.data.validation_file
    record = {
        "model_name_or_path": os.path.abspath(config.model_name_or_path),
        "validation_file": os.path.abspath(data) if data else None,
        "validation_file_sha256": file_digest(data) if data else None,
        "dataset_name": config.data.dataset_name,
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
        raw = task.read(config.input_file, "--input_file", config.data.data_format, labelled=False)
    except DataError as error:
        raise DataError(
            f"{error} The model at {config.model_name_or_path} does task {task.name!r}: give "
            "--input_file in a format of that task."
        ) from None
    model, tokenizer = load_saved_model(
        task.auto_model_class_name, config.model_name_or_path, task.name
    )
    check_sequence_length(config.data.max_seq_length, model, tokenizer)

    def encode(options: dict):
        if task.name == "ner":
            return task.encode_windows(raw, tokenizer, config.data.max_seq_length, None, options)
        return task.tokenize(raw, tokenizer, None, config.data.max_seq_length, False, options)

    data = tokenize_once_per_node(
        accelerator,
        "predict",
        encode,
        {**tokenization_parts(config, task, tokenizer, None), "data": raw._fingerprint},
        config.data.preprocessing_num_workers,
        config.data.overwrite_cache,
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


def check_output_dir(output_dir: str, config: TrainConfig) -> None:
    """Refuse a folder this run must not write into: a file, a read-only folder, someone else's
    folder for the demo, or a saved model or checkpoints that the options do not say to
    replace or continue."""
    if os.path.exists(output_dir) and not os.path.isdir(output_dir):
        raise ConfigError(
            f"--output_dir is a file, not a folder: got {output_dir!r}. Name a folder."
        )
    check_writable_folder(output_dir)
    if os.path.isdir(output_dir) and not config.overwrite_output_dir:
        check_saved_run(output_dir, config)
    if config.is_demo:
        check_demo_folder(output_dir)


def check_saved_run(output_dir: str, config: TrainConfig) -> None:
    """Refuse to replace a saved model or checkpoints unless told to continue the run, and
    refuse to continue a run that is finished."""
    checkpoints = committed_checkpoints(output_dir)
    newest = checkpoints[-1][0] if checkpoints else None
    finished = final_model_step(output_dir)
    present = model_files_present(output_dir)
    interrupted = os.path.isdir(os.path.join(output_dir, MODEL_TEMP))
    if model_manifest(os.path.join(output_dir, MODEL_TEMP), check_files=False) is not None:
        return  # a complete final model whose move into place was interrupted: finished later
    if config.checkpointing.resume_from_checkpoint:
        if finished is not None and (newest is None or newest <= finished):
            raise ConfigError(
                f"--output_dir already holds the finished model of this run: got {output_dir!r} "
                f"(saved at step {finished}; no checkpoint is newer), so there is nothing to "
                "resume. Choose another folder, or pass --overwrite_output_dir to train again."
            )
        if finished is None and present and not (checkpoints or interrupted):
            raise ConfigError(
                f"--output_dir already holds a model and no checkpoints: got {output_dir!r} "
                f"(has {', '.join(present)}), so there is nothing to resume. Choose another "
                "folder, or pass --overwrite_output_dir to replace it."
            )
        return
    if checkpoints:
        raise ConfigError(
            f"--output_dir holds checkpoints of an earlier run: got {output_dir!r} (newest "
            f"{os.path.basename(checkpoints[-1][1])}). Pass --resume_from_checkpoint auto to "
            "continue it, or --overwrite_output_dir to start over (its checkpoints are deleted)."
        )
    if config.is_demo and is_demo_output(output_dir):
        return
    if present:
        raise ConfigError(
            f"--output_dir already holds a model: got {output_dir!r} (has {', '.join(present)}). "
            "Choose another folder, or pass --overwrite_output_dir to replace it. (A run that was "
            "interrupted continues from its checkpoints with --resume_from_checkpoint auto.)"
        )
    written = [name for name in RUN_OUTPUTS if os.path.lexists(os.path.join(output_dir, name))]
    if written and not os.path.isfile(os.path.join(output_dir, RUN_MARKER)):
        raise ConfigError(
            f"--output_dir already holds files that a run writes: got {output_dir!r} (has "
            f"{', '.join(written)}). Choose another folder (e.g. a subfolder), or pass "
            "--overwrite_output_dir to replace them."
        )


def check_writable_folder(output_dir: str) -> None:
    """Refuse an output folder (or the nearest existing folder above it) that cannot be
    written, before any work."""
    existing = os.path.abspath(output_dir)
    too_long = [part for part in existing.split(os.sep) if len(os.fsencode(part)) > 255]
    if too_long:
        raise ConfigError(
            f"--output_dir has a name longer than 255 bytes: got {too_long[0][:40]!r}... "
            "Choose a shorter name."
        )
    while not os.path.isdir(existing):
        if os.path.lexists(existing):
            raise ConfigError(
                f"--output_dir cannot be written: got {output_dir!r} ({existing} is a file, not "
                "a folder). Choose another folder."
            )
        existing = os.path.dirname(existing)
    why = why_unwritable(existing)
    if why is None:
        return
    raise ConfigError(
        f"--output_dir cannot be written: got {output_dir!r} ({why}). Choose a folder you can "
        "write to."
    )


def check_demo_folder(output_dir: str) -> None:
    """The demo writes its corpus into OUTPUT_DIR/data: only into a new or empty folder, or
    one an earlier demo run wrote."""
    if not os.path.isdir(output_dir) or is_demo_output(output_dir):
        return
    entries = sorted(set(os.listdir(output_dir)) - {LOCK_FILE})
    if entries:
        shown = ", ".join(entries[:5]) + (", ..." if len(entries) > 5 else "")
        raise ConfigError(
            f"--output_dir is not empty and not an earlier demo run's: got {output_dir!r} (has "
            f"{shown}). With no data options, accel-trainer trains on its demo corpus and writes "
            "it into OUTPUT_DIR/data: give a new or empty folder, or your data with --train_file."
        )


def is_demo_output(output_dir: str) -> bool:
    """Whether output_dir was written by an earlier demo run (on the built-in corpus)."""
    return os.path.isfile(os.path.join(output_dir, DEMO_MARKER))


def read_train_and_eval(config: TrainConfig, task, accelerator):
    """The raw train and eval splits; the demo corpus is written first when no data is given."""
    if config.is_demo:
        from accel_trainer.tasks.demo import write_demo_corpus, write_demo_re_corpus

        output_dir = config.resolved_output_dir()
        folder = os.path.join(output_dir, "data")
        write = write_demo_re_corpus if task.name == "re" else write_demo_corpus
        with accelerator.main_process_first():
            if accelerator.is_local_main_process:
                # Marked first: an interrupted demo run's folder stays one a demo may rewrite.
                os.makedirs(output_dir, exist_ok=True)
                touch(os.path.join(output_dir, DEMO_MARKER))
                if os.path.islink(folder):
                    os.unlink(folder)  # the demo's own data/ is a folder here, never a link
                write(folder)
        demo_train, demo_eval = demo_paths(folder, task.name)
        logger.info("No data given: training on the demo corpus written to %s", folder)
        train_raw = task.read(demo_train, "demo train file", "auto")
        eval_raw = task.read(demo_eval, "demo validation file", "auto")
        return train_raw, eval_raw
    train_raw = read_split(config, task, "train")
    eval_raw = None
    if config.data.validation_file is not None or config.data.dataset_name is not None:
        eval_raw = read_split(config, task, "validation")
    return train_raw, eval_raw


def demo_paths(folder: str, task_name: str) -> tuple[str, str]:
    suffix = "jsonl" if task_name == "re" else "conll"
    return os.path.join(folder, f"train.{suffix}"), os.path.join(folder, f"dev.{suffix}")


def read_split(config: TrainConfig | EvalConfig, task, split: str):
    if config.data.dataset_name is not None:
        if task.name != "ner":
            raise ConfigError(
                "--dataset_name is supported for --task ner only: give --train_file and "
                "--validation_file for relation extraction."
            )
        return task.read_hub(config.data.dataset_name, config.data.dataset_config_name, split)
    if split == "train":
        return task.read(config.data.train_file, "--train_file", config.data.data_format)
    return task.read(config.data.validation_file, "--validation_file", config.data.data_format)


def train_source(config: TrainConfig) -> str:
    if config.data.dataset_name:
        return f"--dataset_name {config.data.dataset_name} split 'train'"
    return f"--train_file {config.data.train_file}" if config.data.train_file else "demo train file"


def eval_source(config: TrainConfig | EvalConfig) -> str:
    if config.data.dataset_name:
        return f"--dataset_name {config.data.dataset_name} split 'validation'"
    if config.data.validation_file:
        return f"--validation_file {config.data.validation_file}"
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
