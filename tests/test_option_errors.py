"""Bad options and config files: one `accel-trainer: error:` line, exit 2, before any work."""

import hashlib
import json
import logging
import os

import pytest

from accel_trainer import prepare
from accel_trainer.cli import main, parse_config
from accel_trainer.config import (
    MAX_COUNT,
    MAX_SEED,
    MAX_SEQ_LENGTH,
    TINY_BERT_MAX_SEQ_LENGTH,
    EvalConfig,
    PredictConfig,
    TaskOverrides,
    TrainConfig,
    validate,
)
from accel_trainer.data_options import DataOptions, EvalDataOptions, InputOptions
from accel_trainer.errors import ConfigError
from accel_trainer.runtime_options import RuntimeOptions
from accel_trainer.train.batching_options import BatchingOptions, EvalBatchingOptions
from accel_trainer.train.checkpointer_options import CheckpointEvery, CheckpointOptions
from accel_trainer.train.evaluation_options import EvalOptions
from accel_trainer.train.optim_options import OptimOptions
from accel_trainer.train.run_log_options import LoggingOptions


@pytest.fixture
def no_heavy_work(monkeypatch):
    """Bad input must be refused before a model is built or data is tokenized."""

    def refuse(*args, **kwargs):
        raise AssertionError("heavy work started despite bad input")

    for name in ("build_tiny_bert", "load_pretrained", "tokenize_once_per_node"):
        monkeypatch.setattr(prepare, name, refuse)


def run_bad(argv, capsys) -> str:
    """Run the CLI in-process; it must exit 2 with exactly one error and no usage dump."""
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("accel-trainer: error:") == 1, err
    assert "Traceback" not in err and "usage:" not in err
    return err


def digest(path) -> str:
    return hashlib.sha256(open(path, "rb").read()).hexdigest()


CONFIG_FILES = [
    ("bad.yaml", b"train_file: [a\n  b: c\n", "bad.yaml line 2 column 4 is not valid YAML"),
    (
        "object.yaml",
        b"seed: !!python/object/apply:os.system ['echo hi']\n",
        "object.yaml line 1 column 7 has a Python tag, which config files may not use: got "
        "'!!python/object/apply:os.system'",
    ),
    ("int.yaml", b"seed: !!python/int 3\n", "has a Python tag"),
    ("custom.yaml", b"seed: !mine 3\n", "has a tag, which config files may not use: got '!mine'"),
    ("tab.yaml", b"seed:\t1\n\tfoo: 2\n", "YAML indents with spaces, not tabs"),
    ("two.yaml", b"seed: 1\n---\nseed: 2\n", "two.yaml line 2 column 1 is not valid YAML"),
    ("latin1.yaml", "output_dir: caf\xe9\n".encode("latin1"), "latin1.yaml line 1 is not UTF-8"),
    ("latin1.json", '{"output_dir": "caf\xe9"}'.encode("latin1"), "line 1 is not UTF-8 text"),
    ("empty.json", b"", "empty.json is empty: got no options"),
    ("blank.json", b"  \n", "blank.json is empty: got no options"),
    ("list.json", b"[1, 2]", "must hold a mapping of option: value: got a list"),
    ("comma.json", b'{"seed": 1,}', "comma.json line 1 column 12 is not valid JSON"),
    ("twice.yaml", b"seed: 1\nseed: 2\n", "gives option 'seed' twice: got it on lines 1 and 2"),
    ("twice.json", b'{"seed": 1, "seed": 2}', "gives option 'seed' more than once"),
    ("spelled.yaml", b"max_seq_length: 64\nmax-seq-length: 32\n", "'max_seq_length' twice"),
    ("nested.yaml", b"config: other.yaml\n", "names another config file: got 'other.yaml'"),
    ("null.yaml", b"seed:\n", "option 'seed' has no value: got null"),
    ("inf.yaml", b"seed: .inf\n", "option 'seed' has the wrong type: got inf, expected a whole"),
    ("huge.json", b'{"seed": 1e400}', "option 'seed' has the wrong type: got inf"),
    ("typo.yaml", b"learnin_rate: 0.1\n", "got 'learnin_rate'. Did you mean learning_rate?"),
    ("liststr.yaml", b"output_dir: [a, b]\n", "got ['a', 'b'], expected a string"),
    ("deep.json", b"[" * 100_000 + b"]" * 100_000, "is nested too deeply"),
]


@pytest.mark.parametrize("name, content, message", CONFIG_FILES)
def test_bad_config_file_is_one_line(tmp_path, capsys, no_heavy_work, name, content, message):
    path = tmp_path / name
    path.write_bytes(content)
    out = tmp_path / "out"
    err = run_bad(["train", str(path), "--output_dir", str(out), "--max_train_steps", "1"], capsys)
    assert message in err
    assert not out.exists()


def test_config_file_problems_are_listed_together(tmp_path, capsys):
    path = tmp_path / "many.yaml"
    path.write_text("seed: x\nlearnin_rate: 1\nmax_seq_length:\n")
    err = run_bad(["train", str(path)], capsys)
    assert "invalid options:" in err
    assert "'seed' has the wrong type: got 'x', expected a whole number" in err
    assert "unknown option: got 'learnin_rate'" in err
    assert "'max_seq_length' has no value" in err


def test_config_file_that_is_a_folder_or_given_twice(tmp_path, capsys):
    folder = tmp_path / "configs.yaml"
    folder.mkdir()
    err = run_bad(["train", "--config", str(folder)], capsys)
    assert f"config file is a folder: got {str(folder)!r}" in err
    first, second = tmp_path / "a.yaml", tmp_path / "b.json"
    first.write_text("seed: 1\n")
    second.write_text('{"seed": 2}')
    err = run_bad(["train", str(first), "--config", str(second)], capsys)
    assert "config file is given 2 times" in err


def test_a_byte_order_mark_is_fine(tmp_path):
    for name in ("bom.json", "bom.yaml"):
        path = tmp_path / name
        text = '{"seed": 3}' if name.endswith("json") else "seed: 3\n"
        path.write_text(text, encoding="utf-8-sig")
        assert parse_config(TrainConfig, "train", [str(path)]).runtime.seed == 3


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "-1"], f"--seed must be in [0, {MAX_SEED}] (2**32 - 1): got -1"),
        (["--seed", "1099511627776"], "--seed must be in [0, 4294967295] (2**32 - 1): got 10995"),
        (
            ["--max_seq_length", "2000000000"],
            f"--max_seq_length must be at most {TINY_BERT_MAX_SEQ_LENGTH} for tiny-bert: got 2000",
        ),
        (["--per_device_train_batch_size", str(10**20)], f"must be at most {MAX_COUNT}: got 1000"),
        (["--per_device_eval_batch_size", str(10**20)], "--per_device_eval_batch_size must be at"),
        (["--gradient_accumulation_steps", str(10**20)], "--gradient_accumulation_steps must be"),
        (["--global_batch_size", str(2**70)], "--global_batch_size must be at most 2147483647"),
        (["--max_train_steps", str(10**20)], "--max_train_steps must be at most 2147483647"),
        (
            ["--num_train_epochs", "1e30"],
            "--num_train_epochs must be at most 2147483647: got 1e+30",
        ),
        (["--ddp_timeout", str(10**12)], "--ddp_timeout must be at most 31536000 seconds"),
        (["--adam_beta1", "2"], "--adam_beta1 must be in [0, 1): got 2.0"),
        (["--adam_beta2", "nan"], "--adam_beta2 must be a finite number: got nan"),
        (["--adam_epsilon", "-1"], "--adam_epsilon cannot be negative: got -1.0"),
        (["--checkpointing_steps", "\u00b2"], "--checkpointing_steps must be a positive number"),
        (["--label_names", ""], "--label_names has an empty label: got ['']"),
        (["--resume_from_checkpoint", ""], "--resume_from_checkpoint is empty: got ''"),
        (["--dataset_config_name", "x"], "--dataset_config_name needs --dataset_name"),
        (["--dataset_name", " "], "--dataset_name is empty: got ' '"),
        (["--task", "re", "--negative_label", ""], "--negative_label is empty: got ''"),
        (["--task", "re", "--entity_markers", "[CLS],b,c,d"], "cannot be special tokens"),
        (["--model_name_or_path", ""], "--model_name_or_path is empty: got ''"),
    ],
)
def test_out_of_range_options(tmp_path, capsys, no_heavy_work, flags, message):
    out = tmp_path / "out"
    err = run_bad(["train", "--output_dir", str(out), "--max_train_steps", "1", *flags], capsys)
    assert message in err
    assert not out.exists()


def test_limits_themselves_are_accepted(small_data):
    train, dev = small_data
    assert (
        TrainConfig.from_options(seed=MAX_SEED, max_seq_length=TINY_BERT_MAX_SEQ_LENGTH).problems()
        == []
    )
    big = TrainConfig.from_options(per_device_train_batch_size=MAX_COUNT, max_train_steps=MAX_COUNT)
    assert big.problems() == []
    saved = EvalConfig.from_options(model_name_or_path="model", validation_file=dev)
    saved.data.max_seq_length = MAX_SEQ_LENGTH
    assert saved.problems() == []
    saved.data.max_seq_length = MAX_SEQ_LENGTH + 1
    assert saved.problems() == [
        f"--max_seq_length must be at most {MAX_SEQ_LENGTH}: got {MAX_SEQ_LENGTH + 1}. Use the "
        "model's own limit or less, e.g. 512."
    ]


@pytest.mark.parametrize("value", ["", "  "])
def test_an_empty_output_dir_is_refused(tmp_path, monkeypatch, capsys, small_data, value):
    monkeypatch.chdir(tmp_path)
    for argv in (
        ["train", "--train_file", small_data[0], "--output_dir", value],
        ["train", "--max_train_steps", "1", "--output_dir", value],
        [
            "evaluate",
            "--model_name_or_path",
            str(tmp_path),
            "--validation_file",
            small_data[1],
            "--output_dir",
            value,
        ],
    ):
        err = run_bad(argv, capsys)
        assert f"--output_dir is empty: got {value!r}. Name a folder" in err
    assert os.listdir(tmp_path) == []  # no outputs/demo-ner, no folder named '  '


@pytest.mark.parametrize(
    "argv, message",
    [
        (["train", "--train_file", "", "--output_dir", "o"], "--train_file is empty: got ''"),
        (["train", "--validation_file", "", "--output_dir", "o"], "--validation_file is empty"),
        (
            ["evaluate", "--model_name_or_path", "m", "--validation_file", ""],
            "--validation_file is empty: got ''",
        ),
        (
            ["predict", "--model_name_or_path", "m", "--input_file", "", "--output_file", "p"],
            "--input_file is empty: got ''",
        ),
        (
            ["predict", "--model_name_or_path", "m", "--input_file", "i", "--output_file", " "],
            "--output_file is empty: got ' '",
        ),
        (
            ["predict", "--model_name_or_path", "", "--input_file", "i", "--output_file", "p"],
            "--model_name_or_path is empty: got ''",
        ),
    ],
)
def test_empty_paths_are_refused(tmp_path, monkeypatch, capsys, no_heavy_work, argv, message):
    monkeypatch.chdir(tmp_path)
    assert message in run_bad(argv, capsys)
    assert os.listdir(tmp_path) == []


def test_every_missing_data_file_is_listed_at_once(tmp_path, capsys, no_heavy_work):
    train, dev = str(tmp_path / "train.conll"), str(tmp_path / "dev.conll")
    err = run_bad(
        [
            "train",
            "--train_file",
            train,
            "--validation_file",
            dev,
            "--seed",
            "-1",
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert "invalid options:" in err
    assert f"--train_file does not exist: got {train!r}" in err
    assert f"--validation_file does not exist: got {dev!r}" in err
    assert "--seed must be in" in err
    assert err.index("--train_file") < err.index("--validation_file")
    err = run_bad(["train", "--train_file", str(tmp_path), "--validation_file", dev], capsys)
    assert "--train_file is not a file" in err and "--validation_file does not exist" in err
    err = run_bad(["evaluate", "--model_name_or_path", "m", "--validation_file", dev], capsys)
    assert f"--validation_file does not exist: got {dev!r}" in err
    err = run_bad(
        [
            "predict",
            "--model_name_or_path",
            "m",
            "--input_file",
            dev,
            "--output_file",
            str(tmp_path / "no" / "p.conll"),
        ],
        capsys,
    )
    assert "--input_file does not exist" in err
    assert "--output_file is in a folder that does not exist" in err
    assert not (tmp_path / "o").exists()


def test_predict_never_writes_over_its_input(tmp_path, capsys, small_data):
    source = tmp_path / "input.conll"
    source.write_text("John\nsmiled\n")
    before = digest(source)
    for flags in ([], ["--overwrite_output_file"]):
        err = run_bad(
            [
                "predict",
                "--model_name_or_path",
                str(tmp_path),
                "--input_file",
                str(source),
                "--output_file",
                str(source),
                *flags,
            ],
            capsys,
        )
        assert "--output_file is the --input_file" in err
    assert digest(source) == before
    err = run_bad(
        [
            "predict",
            "--model_name_or_path",
            "m",
            "--input_file",
            str(source),
            "--output_file",
            str(tmp_path),
        ],
        capsys,
    )
    assert "--output_file is a folder" in err


def test_overwrite_output_file_is_a_flag(tmp_path):
    base = ["--model_name_or_path", "m", "--input_file", "i", "--output_file", "o"]
    assert parse_config(PredictConfig, "predict", base).overwrite_output_file is False
    config = parse_config(PredictConfig, "predict", [*base, "--overwrite_output_file"])
    assert config.overwrite_output_file is True
    path = tmp_path / "predict.yaml"
    path.write_text("overwrite_output_file: true\n")
    assert parse_config(PredictConfig, "predict", [str(path), *base]).overwrite_output_file


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--seed", "1.5"], "--seed must be a whole number: got '1.5'"),
        (["--max_train_steps", "1e3"], "--max_train_steps must be a whole number: got '1e3'"),
        (["--learning_rate", "fast"], "--learning_rate must be a number: got 'fast'"),
        (["--cpu", "maybe"], "--cpu must be true or false: got 'maybe'"),
        (["--label_names"], "--label_names needs at least one value: got none"),
        (["--config"], "--config needs a value: got none"),
        (["--lr_scheduler_type", "exp"], "--lr_scheduler_type is not one of"),
        (["--max", "3"], "--max is not an option of accel-trainer train: got '--max'. See"),
        (["--num_train_epoch", "1"], "got '--num_train_epoch'. Did you mean --num_train_epochs?"),
        (["--lr", "1e-4"], "got '--lr'. Did you mean --learning_rate?"),
        (["--epochs", "2"], "got '--epochs'. Did you mean --num_train_epochs?"),
        (["--batch_size", "8"], "Did you mean --per_device_train_batch_size?"),
        (
            ["--learnin_rate", "1", "--seeed", "2"],
            "--learnin_rate is not an option of accel-trainer train: got '--learnin_rate'. Did "
            "you mean --learning_rate?",
        ),
        (["--seed", "1", "extra"], "unexpected argument: got 'extra'. Give options as"),
        (["--seed", "1", "run.yaml"], "A config file goes first, right after the command."),
        (["--learning_rate", "-1e-3"], "goes after '=': --learning_rate=VALUE"),
        (["--", "--learning_rate", "3"], "unexpected arguments: got '--', '--learning_rate', '3'"),
    ],
)
def test_flag_errors_are_one_line_without_the_usage(capsys, flags, message):
    err = run_bad(["train", *flags], capsys)
    assert message in err
    assert "See `accel-trainer train --help`" in err or "unexpected argument" in err


def test_every_unknown_flag_is_listed(capsys):
    err = run_bad(["train", "--learnin_rate", "1", "--seeed", "2"], capsys)
    assert "--learnin_rate is not an option" in err and "--seeed is not an option" in err
    assert "Did you mean --seed?" in err


def test_a_json_list_and_a_typo_in_a_config_file(tmp_path, capsys):
    path = tmp_path / "run.json"
    path.write_text(json.dumps([{"seed": 1}]))
    assert "must hold a mapping" in run_bad(["evaluate", str(path)], capsys)


def test_a_repeated_flag_warns_and_the_last_wins(caplog):
    flags = ["--seed", "1", "--seed=2", "--gradient_accumulation_steps", "3"]
    with caplog.at_level(logging.WARNING, logger="accel_trainer"):
        config = parse_config(TrainConfig, "train", [*flags, "--gradient-accumulation-steps", "4"])
    assert (config.runtime.seed, config.batching.gradient_accumulation_steps) == (2, 4)
    assert "--seed is given 2 times on the command line: the last one wins" in caplog.text
    assert "--gradient_accumulation_steps is given 2 times" in caplog.text


@pytest.mark.parametrize(
    "group, message",
    [
        (InputOptions(max_seq_length=4), "--max_seq_length must be at least 8: got 4"),
        (InputOptions(data_format="xml"), "--data_format is not one of"),
        (EvalDataOptions(dataset_config_name="x"), "--dataset_config_name needs --dataset_name"),
        (DataOptions(label_names=["O", "O"]), "--label_names has duplicates: got ['O', 'O']"),
        (DataOptions(train_file=__file__, dataset_name="d"), "--train_file and --dataset_name"),
        (EvalBatchingOptions(per_device_eval_batch_size=0), "--per_device_eval_batch_size must"),
        (BatchingOptions(gradient_accumulation_steps=0), "--gradient_accumulation_steps must be"),
        (BatchingOptions(max_tokens_per_batch=8, global_batch_size=8), "cannot be combined"),
        (OptimOptions(learning_rate=-1.0), "--learning_rate must be positive: got -1.0"),
        (OptimOptions(warmup_ratio=0.1, num_warmup_steps=2), "are both set"),
        (OptimOptions(max_nonfinite_steps=-1), "--max_nonfinite_steps cannot be negative"),
        (CheckpointOptions(checkpointing_steps="often"), "--checkpointing_steps must be a posi"),
        (CheckpointOptions(save_total_limit=-1), "--save_total_limit cannot be negative"),
        (EvalOptions(load_best_model_at_end=True), "--load_best_model_at_end needs --metric_for"),
        (EvalOptions(eval_steps=-1), "--eval_steps cannot be negative: got -1"),
        (LoggingOptions(logging_steps=0), "--logging_steps must be positive: got 0"),
        (LoggingOptions(report_to="paper"), "--report_to is not one of"),
        (RuntimeOptions(seed=-1), "--seed must be in [0, 4294967295]"),
        (RuntimeOptions(ddp_timeout=0), "--ddp_timeout must be positive: got 0"),
        (TaskOverrides(tag_scheme="bioes"), "--tag_scheme is not one of ['bio', 'iobes', 'none']"),
        (TaskOverrides(negative_label=" "), "--negative_label is empty: got ' '"),
    ],
)
def test_each_group_checks_its_own_options(group, message):
    found = group.problems()
    assert len(found) == 1 and message in found[0], found
    assert type(group)().problems() == []  # its defaults are fine


def test_problems_of_every_group_are_listed_at_once():
    config = TrainConfig.from_options(
        train_file="missing.conll",
        output_dir="o",
        max_seq_length=4,
        per_device_train_batch_size=0,
        learning_rate=0.0,
        checkpointing_steps="often",
        metric_for_best_model="f1",
        logging_steps=0,
        seed=-1,
        tag_scheme="bioes",
    )
    expected = [
        "--max_seq_length must be at least 8",
        "--train_file does not exist",
        "--per_device_train_batch_size must be positive",
        "--learning_rate must be positive",
        "--checkpointing_steps must be a positive number",
        "--metric_for_best_model must name an eval metric",
        "--logging_steps must be positive",
        "--seed must be in",
        "--tag_scheme is not one of",
    ]
    with pytest.raises(ConfigError) as raised:
        validate(config)
    message = str(raised.value)
    assert message.startswith("invalid options:")
    for text in expected:
        assert message.count(text) == 1, text


def test_options_of_two_groups_are_checked_by_the_config():
    config = TrainConfig.from_options(max_tokens_per_batch=512, allow_topology_change=True)
    assert config.batching.problems() == [] and config.checkpointing.problems() == []
    assert config.problems() == [
        "--max_tokens_per_batch and --allow_topology_change cannot be combined: token-budget "
        "batches hold a varying number of examples, so there is no fixed global batch. Drop one "
        "of them."
    ]


@pytest.mark.parametrize("config_class", [TrainConfig, EvalConfig, PredictConfig])
def test_from_options_refuses_an_unknown_name_with_a_suggestion(config_class):
    with pytest.raises(ConfigError) as raised:
        config_class.from_options(seed=1, max_seq_lenght=64)
    assert str(raised.value) == (
        f"{config_class.__name__} has no option 'max_seq_lenght': got max_seq_lenght=64. Did you "
        "mean max_seq_length?"
    )


def test_from_options_puts_each_flat_option_in_its_group():
    config = TrainConfig.from_options(
        task="re", learning_rate=0.1, seed=7, negative_label="Other", train_file="t.jsonl"
    )
    assert (config.optim.learning_rate, config.runtime.seed) == (0.1, 7)
    assert config.data.train_file == "t.jsonl"
    assert type(config.task_options).__name__ == "ReOptions"
    assert config.task_options.negative_label == "Other"
    flat = config.to_dict()
    assert flat["learning_rate"] == 0.1 and flat["negative_label"] == "Other"
    assert "optim" not in flat and "command_line" not in flat and "tag_scheme" not in flat
    assert TrainConfig.from_options(**flat).to_dict() == flat


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--task", "re", "--label_all_tokens"], "--label_all_tokens applies to --task ner only"),
        (["--task", "re", "--tag_scheme", "iobes"], "--tag_scheme applies to --task ner only"),
        (["--typed_markers"], "--typed_markers applies to --task re only: got --task ner."),
        (["--negative_label", "Other"], "--negative_label applies to --task re only"),
    ],
)
def test_an_option_of_another_task_is_refused(tmp_path, capsys, no_heavy_work, argv, message):
    out = tmp_path / "out"
    err = run_bad(["train", "--output_dir", str(out), "--max_train_steps", "1", *argv], capsys)
    assert message in err
    assert not out.exists()


def test_another_tasks_option_at_its_default_is_accepted():
    config = TrainConfig.from_options(task="re", label_all_tokens=False, tag_scheme="bio")
    assert config.problems() == []


@pytest.mark.parametrize(
    "text, steps, epoch, valid",
    [
        ("no", None, False, True),
        ("epoch", None, True, True),
        ("25", 25, False, True),
        ("0", None, False, False),
        ("often", None, False, False),
        ("\u00b2", None, False, False),
    ],
)
def test_checkpointing_steps_is_parsed_once(text, steps, epoch, valid):
    every = TrainConfig.from_options(checkpointing_steps=text).checkpointing.checkpointing_steps
    assert isinstance(every, CheckpointEvery)
    assert (every.steps, every.epoch, every.is_valid()) == (steps, epoch, valid)
    assert every.never == (text == "no")
    config = TrainConfig.from_options(checkpointing_steps=text)
    assert config.to_dict()["checkpointing_steps"] == text  # as the user wrote it


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--resume_from_checkpoint", "/no/such/checkpoint-3"],
         "--resume_from_checkpoint does not exist: got '/no/such/checkpoint-3'. Give a "
         "checkpoint-<step> folder of the run"),
        (["--label_names", "O,B-PER,I-PER"],
         "--label_names is one label: got ['O,B-PER,I-PER']. Separate the labels by spaces: "
         "--label_names O B-PER I-PER"),
        (["--dataset_name", "./no-such-folder"],
         "--dataset_name names a folder that does not exist: got './no-such-folder'."),
    ],
)  # fmt: skip
def test_what_a_new_user_mistypes_is_named_for_what_it_is(tmp_path, capsys, flags, message):
    assert main(["train", *flags, "--output_dir", str(tmp_path / "out")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_a_resume_path_that_is_a_file_or_a_runs_output_folder_is_named_as_such(tmp_path, capsys):
    (tmp_path / "out" / "checkpoint-2").mkdir(parents=True)
    (tmp_path / "notes.txt").write_text("x")
    err = run_bad(["train", "--resume_from_checkpoint", str(tmp_path / "notes.txt")], capsys)
    assert "--resume_from_checkpoint is a file, not a checkpoint folder" in err
    err = run_bad(["train", "--resume_from_checkpoint", str(tmp_path / "out")], capsys)
    assert "is a run's output folder, not one of its checkpoints" in err
    assert f"--output_dir {tmp_path / 'out'} --resume_from_checkpoint auto" in err
    err = run_bad(["train", "--resume_from_checkpoint", "LATEST"], capsys)
    assert "--resume_from_checkpoint takes latest in lower case: got 'LATEST'" in err
