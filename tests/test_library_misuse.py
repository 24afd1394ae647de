"""The Python API refuses what it cannot do right, with one clear message, before any work and
without touching a user's files: wrong value types, a second fit(), a direct trainer on a folder
holding someone's files, incomplete tasks, and the lock held by a trainer of this process."""

import inspect
import os

import pytest

from accel_trainer import AccelerateTrainer, Task, TrainConfig, register_task
from accel_trainer.config import validate
from accel_trainer.errors import ConfigError, InputError
from accel_trainer.preprocessing import class_code, task_source
from accel_trainer.tasks import windows
from accel_trainer.tasks.ner import NerTask
from accel_trainer.tasks.ner import encoding as ner_encoding
from accel_trainer.tasks.re import ReTask
from tests.conftest import reset_accelerate


@pytest.mark.parametrize(
    "options, message",
    [
        ({"overwrite_output_dir": "yes"}, "--overwrite_output_dir has the wrong type: got 'yes', "
         "expected true or false."),
        ({"max_train_steps": 10.5}, "--max_train_steps has the wrong type: got 10.5, expected a "
         "whole number."),
        ({"label_names": "BIO"}, "--label_names has the wrong type: got 'BIO', expected a list"),
        ({"max_seq_length": float("nan")}, "--max_seq_length has the wrong type: got nan"),
        ({"max_train_steps": None}, "--max_train_steps has the wrong type: got None"),
        ({"entity_markers": ["<e1>"], "task": "re"}, "--entity_markers has the wrong type"),
    ],
)  # fmt: skip
def test_python_option_values_are_checked_like_config_file_values(options, message):
    with pytest.raises(ConfigError, match=message.replace("(", r"\(").replace(".", r"\.")):
        TrainConfig.from_options(**options)


def test_python_values_of_the_right_meaning_are_converted():
    config = TrainConfig.from_options(
        overwrite_output_dir="false",
        learning_rate="1e-3",
        checkpointing_steps=10,
        max_seq_length=64.0,
    )
    assert config.overwrite_output_dir is False and config.optim.learning_rate == 0.001
    assert config.checkpointing.checkpointing_steps.steps == 10
    assert config.data.max_seq_length == 64 and type(config.data.max_seq_length) is int


def test_watching_a_metric_needs_evaluation_data(small_data, tmp_path):
    config = TrainConfig.from_options(
        train_file=small_data[0], output_dir=str(tmp_path), metric_for_best_model="eval_f1"
    )
    with pytest.raises(ConfigError, match="--metric_for_best_model needs evaluation data"):
        validate(config)


def test_the_old_name_of_the_global_loss_is_explained():
    with pytest.raises(ConfigError, match="--loss_normalization tokens is now called global"):
        validate(TrainConfig.from_options(loss_normalization="tokens"))


class Incomplete(Task):
    name = "incomplete"


def test_only_complete_tasks_with_word_names_can_be_registered():
    with pytest.raises(ConfigError, match="Incomplete does not define compute_metrics, "):
        register_task(Incomplete)

    class Spaced(Incomplete):
        name = "my task"

    with pytest.raises(ConfigError, match="whose `name` is a word .*got 'my task'"):
        register_task(Spaced)


def test_an_interactive_task_is_fingerprinted_by_its_compiled_code():
    """A task typed into a notebook has no source file: an edit must still miss the cache."""
    namespace: dict = {}
    exec("class Typed:\n    def tokenize(self):\n        return 4\n", namespace)
    before = class_code(namespace["Typed"])
    exec("class Typed:\n    def tokenize(self):\n        return 64\n", namespace)
    assert class_code(namespace["Typed"]) != before
    exec("class Typed:\n    def tokenize(self):\n        return 64\n", namespace)
    again = class_code(namespace["Typed"])
    exec("class Typed:\n    def tokenize(self):\n        return 64\n", namespace)
    assert class_code(namespace["Typed"]) == again  # the same code: the same fingerprint


def test_a_built_in_task_is_fingerprinted_by_every_module_its_encoding_uses():
    """The NER task's rows are made in encoding.py and windows.py, beside its module: an edit
    there must miss the cache too."""
    source = task_source(NerTask())
    for module in (ner_encoding, windows, inspect.getmodule(ReTask)):
        assert inspect.getsource(module) in source
    assert task_source(NerTask()) == source


def small_config(small_data, out, **overrides):
    return TrainConfig.from_options(
        train_file=small_data[0], validation_file=small_data[1], output_dir=str(out),
        max_train_steps=2, **overrides,
    )  # fmt: skip


def test_fit_runs_once_per_trainer(small_data, tmp_path):
    trainer = AccelerateTrainer.from_files(small_config(small_data, tmp_path / "out"))
    trainer.fit()
    log = (tmp_path / "out" / "log_history.jsonl").read_text()
    with pytest.raises(ConfigError, match="fit\\(\\) already ran on this trainer"):
        trainer.fit()
    assert (tmp_path / "out" / "log_history.jsonl").read_text() == log
    reset_accelerate()


def test_a_second_trainer_of_this_process_on_the_same_folder_is_told_so(small_data, tmp_path):
    config = small_config(small_data, tmp_path / "out")
    first = AccelerateTrainer.from_files(config)
    with pytest.raises(ConfigError, match="in use by another trainer in this process"):
        AccelerateTrainer.from_files(config)
    first.release_output_dir()
    second = AccelerateTrainer.from_files(config)
    assert second.fit()["global_step"] == 2
    reset_accelerate()


def trained_and_tokenized(small_data, tmp_path):
    """A trainer that has fitted, its model, and the training data tokenized for it: what a
    user who builds AccelerateTrainer directly has in hand."""
    from accel_trainer.tasks import NerTask

    trained = AccelerateTrainer.from_files(small_config(small_data, tmp_path / "a"))
    trained.fit()
    model = trained.accelerator.unwrap_model(trained.model)
    raw = NerTask().read(small_data[0], "train", "conll")
    data = NerTask().tokenize(raw, trained.tokenizer, model.config.label2id, 128, True)
    return trained, model, data


def test_a_trainer_built_directly_never_overwrites_someones_files(small_data, tmp_path):
    from accel_trainer.tasks import NerTask

    trained, model, data = trained_and_tokenized(small_data, tmp_path)
    task = NerTask()
    folder = tmp_path / "someone"
    folder.mkdir()
    (folder / "README.md").write_text("my notes")
    direct = AccelerateTrainer(
        model, trained.tokenizer, small_config(small_data, folder), task, train_data=data,
        accelerator=trained.accelerator,
    )  # fmt: skip
    with pytest.raises(ConfigError, match="--output_dir already holds files that a run writes"):
        direct.fit()
    with pytest.raises(ConfigError, match="--output_dir already holds files that a run writes"):
        trained.save_model(str(folder))
    assert (folder / "README.md").read_text() == "my notes"
    assert sorted(os.listdir(folder)) == ["README.md"]
    with pytest.raises(InputError, match="eval_data is not a datasets.Dataset or a DataLoader"):
        AccelerateTrainer(
            model, trained.tokenizer, small_config(small_data, folder), task,
            eval_data=[{"input_ids": [1]}], accelerator=trained.accelerator,
        )  # fmt: skip
    reset_accelerate()


def test_an_accelerator_that_would_change_the_training_is_refused(small_data, tmp_path):
    from accelerate import Accelerator

    from accel_trainer.train.arguments import check_accelerator

    with pytest.raises(ConfigError) as error:
        check_accelerator(Accelerator(cpu=True))
    assert "step_scheduler_with_optimizer=True" in str(error.value)
    assert "use_seedable_sampler=False" in str(error.value)
    assert "training_accelerator(config)" in str(error.value)
    reset_accelerate()


def test_a_folder_where_a_model_file_goes_is_refused_before_training(small_data, tmp_path):
    out = tmp_path / "out"
    (out / "tokenizer.json").mkdir(parents=True)
    config = small_config(small_data, out, overwrite_output_dir=True)
    with pytest.raises(ConfigError, match="has a folder where the model's file goes: .*tokenizer"):
        AccelerateTrainer.from_files(config)


def test_save_model_checks_and_locks_a_folder_it_did_not_check(small_data, tmp_path):
    trained = AccelerateTrainer.from_files(small_config(small_data, tmp_path / "a"))
    trained.fit()
    folder = tmp_path / "someone"
    folder.mkdir()
    (folder / "config.json").write_text('{"mine": 1}')
    from accel_trainer.tasks import NerTask

    model = trained.accelerator.unwrap_model(trained.model)
    direct = AccelerateTrainer(model, trained.tokenizer, small_config(small_data, folder),
                               NerTask(), accelerator=trained.accelerator)  # fmt: skip
    with pytest.raises(ConfigError, match="already holds a model"):
        direct.save_model(str(folder))  # its own folder, never checked: before any fit()
    assert (folder / "config.json").read_text() == '{"mine": 1}'
    held = AccelerateTrainer.from_files(small_config(small_data, tmp_path / "held"))
    with pytest.raises(ConfigError, match="in use by another trainer in this process"):
        trained.save_model(str(tmp_path / "held"))
    held.release_output_dir()
    reset_accelerate()


def test_a_refused_fit_can_be_retried_once_the_folder_is_fixed(small_data, tmp_path):
    from accel_trainer.tasks import NerTask

    trained, model, data = trained_and_tokenized(small_data, tmp_path)
    folder = tmp_path / "later"
    folder.mkdir()
    (folder / "README.md").write_text("notes")
    config = small_config(small_data, folder)
    direct = AccelerateTrainer(
        model,
        trained.tokenizer,
        config,
        NerTask(),
        train_data=data,
        accelerator=trained.accelerator,
    )
    with pytest.raises(ConfigError, match="already holds files that a run writes"):
        direct.fit()
    (folder / "README.md").unlink()
    assert direct.fit()["global_step"] == 2
    reset_accelerate()


def test_a_foreign_final_model_folder_is_refused_before_training(small_data, tmp_path):
    out = tmp_path / "out"
    (out / ".tmp-final-model").mkdir(parents=True)
    (out / ".tmp-final-model" / "keep").write_text("x")
    with pytest.raises(ConfigError, match=r"holds \.tmp-final-model, which accel-trainer did not"):
        AccelerateTrainer.from_files(small_config(small_data, out))
    assert (out / ".tmp-final-model" / "keep").read_text() == "x"


def test_large_counts_get_their_limit_not_a_type_error(small_data, tmp_path):
    config = TrainConfig.from_options(max_train_steps=10**30)
    with pytest.raises(ConfigError, match="--max_train_steps must be at most 2147483647"):
        validate(config)


@pytest.mark.parametrize(
    "missing, message",
    [
        ("task", "task is not a Task: got NoneType. Pass one, e.g. NerTask(), or let "
         "AccelerateTrainer.from_files(config) build all three."),
        ("model", "model is not a PreTrainedModel: got NoneType. Pass one, e.g. "
         "AutoModelForTokenClassification.from_pretrained(...), or let "
         "AccelerateTrainer.from_files(config) build all three."),
        ("tokenizer", "tokenizer is not a PreTrainedTokenizerBase: got NoneType. Pass one, e.g. "
         "AutoTokenizer.from_pretrained(...), or let AccelerateTrainer.from_files(config) build "
         "all three."),
    ],
)  # fmt: skip
def test_the_constructor_names_a_missing_part_before_building_anything(tmp_path, missing, message):
    from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer
    from accel_trainer.tasks.ner import NerTask

    tokenizer = build_wordpiece_tokenizer([["Anna", "sings"]])
    parts = {
        "model": build_tiny_bert("AutoModelForTokenClassification", len(tokenizer), ["O", "B"], 32),
        "tokenizer": tokenizer,
        "config": TrainConfig.from_options(output_dir=str(tmp_path / "out")),
        "task": NerTask(),
    }
    parts[missing] = None
    with pytest.raises(ConfigError) as error:
        AccelerateTrainer(**parts).fit()
    assert str(error.value) == message
    assert not (tmp_path / "out").exists()
