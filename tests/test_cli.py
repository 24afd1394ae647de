"""The command line: config files, flag spellings, --help, and every bad-input error."""

import json
import os
import subprocess
import sys

import pytest

from accel_trainer import commands
from accel_trainer.cli import main, parse_config
from accel_trainer.config import TrainConfig
from accel_trainer.storage import output_folder
from tests.conftest import REPO_ROOT, reset_accelerate, write_jsonl


def test_config_file_with_overriding_flags(tmp_path):
    path = tmp_path / "run.yaml"
    path.write_text(
        "train_file: a.conll\noutput_dir: out\nlearning_rate: 5e-5\nnum_train_epochs: 5\n"
        "max-seq-length: 64\nlabel_all_tokens: true\nlabel_names: [O, B-X, I-X]\n"
    )
    config = parse_config(
        TrainConfig, "train", [str(path), "--learning_rate", "0.01", "--max-train-steps", "7"]
    )
    assert config.optim.learning_rate == 0.01  # the flag wins over the file
    assert config.optim.num_train_epochs == 5.0  # from the file
    assert config.data.max_seq_length == 64  # kebab-case key in the file
    assert config.optim.max_train_steps == 7  # kebab-case flag
    assert config.task_options.label_all_tokens is True
    assert config.data.label_names == ["O", "B-X", "I-X"]
    assert config.config == str(path)


def test_json_config_through_the_config_flag(tmp_path):
    path = tmp_path / "run.json"
    path.write_text(json.dumps({"train_file": "a.conll", "output_dir": "o", "seed": 3}))
    config = parse_config(TrainConfig, "train", ["--seed", "4", "--config", str(path)])
    assert (config.data.train_file, config.runtime.seed) == ("a.conll", 4)


@pytest.mark.parametrize(
    "content, message",
    [
        ("learning_rat: 0.1\n", "unknown option: got 'learning_rat'"),
        ("num_train_epochs: many\n", "option 'num_train_epochs' has the wrong type: got 'many'"),
        ("- a\n- b\n", "must hold a mapping"),
        ("lr_scheduler_type: exponential\n", "--lr_scheduler_type is not one of"),
    ],
)
def test_bad_config_file(tmp_path, capsys, content, message):
    path = tmp_path / "bad.yaml"
    path.write_text(content)
    assert main(["train", str(path)]) == 2
    assert message in capsys.readouterr().err


def test_help_answers_and_lists_the_flags():
    done = subprocess.run(
        [sys.executable, "-m", "accel_trainer", "train", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO_ROOT,
    )
    assert done.returncode == 0
    for flag in (
        "--train_file",
        "--per_device_train_batch_size",
        "--lr_scheduler_type",
        "--label_all_tokens",
        "--report_to",
        "--overwrite_output_dir",
        "--cpu",
    ):
        assert flag in done.stdout
    assert main(["--help"]) == 0
    assert main([]) == 2
    assert main(["fly"]) == 2


def run_bad(argv, capsys) -> str:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("accel-trainer: error:") == 1
    return err


def conll(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return str(path)


GOOD = "John B-PER\nsmiled O\n\nOslo B-LOC\n"


@pytest.mark.parametrize(
    "train_text, dev_text, message",
    [
        (
            GOOD,
            "John B-PER\nsmiled O\n\nBerlin B-MISC\n",
            "dev.conll line 4 has a label unseen in training: got 'B-MISC'",
        ),
        ("John B-PER\nsmiled\n", GOOD, "train.conll line 2 has 1 column, expected token and tag"),
        ("", GOOD, "train.conll is empty: got 0 sentences"),
        (GOOD, "\n\n", "dev.conll is empty: got 0 sentences"),
        ("John PERSON\n", GOOD, "line 1 has a tag that is not valid BIO: got 'PERSON'"),
    ],
)
def test_bad_data_files(tmp_path, capsys, no_model_building, train_text, dev_text, message):
    out = tmp_path / "out"
    err = run_bad(
        [
            "train",
            "--train_file",
            conll(tmp_path, "train.conll", train_text),
            "--validation_file",
            conll(tmp_path, "dev.conll", dev_text),
            "--output_dir",
            str(out),
        ],
        capsys,
    )
    assert message in err
    assert not (out / "config.json").exists()


def test_missing_data_file(tmp_path, capsys, no_model_building):
    err = run_bad(
        [
            "train",
            "--train_file",
            str(tmp_path / "nope.conll"),
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capsys,
    )
    assert "--train_file does not exist: got" in err and "nope.conll" in err


def test_a_folder_is_not_a_data_file(tmp_path, capsys, no_model_building):
    err = run_bad(
        ["train", "--train_file", str(tmp_path), "--output_dir", str(tmp_path / "o")], capsys
    )
    assert "--train_file is not a file: got" in err


def test_jsonl_length_mismatch(tmp_path, capsys, no_model_building):
    path = write_jsonl(
        tmp_path / "train.jsonl",
        [
            {"tokens": ["a", "b"], "ner_tags": ["O", "O"]},
            {"tokens": ["John", "Smith"], "ner_tags": ["B-PER"]},
        ],
    )
    err = run_bad(["train", "--train_file", path, "--output_dir", str(tmp_path / "o")], capsys)
    assert "train.jsonl line 2 has 2 tokens but 1 ner_tags" in err


@pytest.mark.parametrize(
    "flags, message",
    [
        (["--per_device_train_batch_size", "0"], "--per_device_train_batch_size must be positive"),
        (["--per_device_eval_batch_size", "-2"], "--per_device_eval_batch_size must be positive"),
        (["--learning_rate=-1e-4"], "--learning_rate must be positive: got -0.0001"),
        (["--num_train_epochs", "-1"], "cannot be negative"),
        (["--num_train_epochs", "0", "--max_train_steps", "0"], "both 0: nothing to train"),
        (["--warmup_ratio", "0.1", "--num_warmup_steps", "3"], "are both set"),
        (["--early_stopping_patience", "2"], "--early_stopping_patience needs"),
        (["--metric_for_best_model", "f1"], "--metric_for_best_model must name an eval metric"),
        (["--checkpointing_steps", "often"], "--checkpointing_steps must be a positive number"),
        (["--max_tokens_per_batch", "512", "--global_batch_size", "32"], "cannot be combined"),
        (["--preprocessing_num_workers", "-1"], "--preprocessing_num_workers cannot be negative"),
    ],
)
def test_bad_options(tmp_path, capsys, no_model_building, small_data, flags, message):
    err = run_bad(
        ["train", "--train_file", small_data[0], "--output_dir", str(tmp_path / "o"), *flags],
        capsys,
    )
    assert message in err
    assert not (tmp_path / "o").exists()


def test_every_bad_option_is_listed_at_once(capsys, no_model_building):
    err = run_bad(
        [
            "train",
            "--per_device_train_batch_size",
            "0",
            "--learning_rate",
            "0",
            "--num_train_epochs",
            "0",
        ],
        capsys,
    )
    assert "--per_device_train_batch_size" in err and "--learning_rate" in err
    assert "nothing to train" in err


def test_own_data_needs_an_output_dir(small_data, capsys, no_model_building):
    err = run_bad(["train", "--train_file", small_data[0]], capsys)
    assert "--output_dir is missing" in err


def saved_model_dir(tmp_path, demo: bool):
    folder = tmp_path / "model"
    folder.mkdir()
    (folder / "config.json").write_text('{"keep": "me"}')
    if demo:
        (folder / output_folder.DEMO_MARKER).write_text("")
    return folder


def test_output_dir_with_a_model_is_refused_and_left_intact(
    tmp_path, capsys, small_data, no_model_building
):
    folder = saved_model_dir(tmp_path, demo=False)
    err = run_bad(["train", "--train_file", small_data[0], "--output_dir", str(folder)], capsys)
    assert "--output_dir already holds a model" in err and "--overwrite_output_dir" in err
    assert (folder / "config.json").read_text() == '{"keep": "me"}'
    assert sorted(os.listdir(folder)) == ["config.json"]
    err = run_bad(["train", "--train_file", small_data[0], "--output_dir", small_data[0]], capsys)
    assert "--output_dir is a file, not a folder" in err


def test_only_a_demo_may_replace_a_demo_output(tmp_path):
    from accel_trainer.errors import ConfigError

    demo_folder = saved_model_dir(tmp_path, demo=True)
    output_folder.check_output_dir(
        str(demo_folder), TrainConfig.from_options(output_dir=str(demo_folder))
    )
    user_config = TrainConfig.from_options(train_file="a.conll", output_dir=str(demo_folder))
    with pytest.raises(ConfigError, match="already holds a model"):
        output_folder.check_output_dir(str(demo_folder), user_config)
    user_config.overwrite_output_dir = True
    output_folder.check_output_dir(str(demo_folder), user_config)
    (demo_folder / output_folder.DEMO_MARKER).unlink()
    with pytest.raises(ConfigError, match="already holds a model"):
        output_folder.check_output_dir(
            str(demo_folder), TrainConfig.from_options(output_dir=str(demo_folder))
        )


def test_the_no_argument_demo_reruns_over_its_own_output(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["train", "--max_train_steps", "2"]) == 0
    first = (tmp_path / "outputs" / "demo-ner" / "model.safetensors").stat().st_mtime_ns
    assert (tmp_path / "outputs" / "demo-ner" / output_folder.DEMO_MARKER).exists()
    reset_accelerate()
    assert main(["train", "--max_train_steps", "2"]) == 0
    assert (tmp_path / "outputs" / "demo-ner" / "model.safetensors").stat().st_mtime_ns > first
    assert "Saved the model and all_results.json to outputs/demo-ner" in capsys.readouterr().out


def test_evaluate_needs_a_saved_model(tmp_path, capsys, small_data):
    err = run_bad(
        [
            "evaluate",
            "--model_name_or_path",
            str(tmp_path / "none"),
            "--validation_file",
            small_data[1],
        ],
        capsys,
    )
    assert "--model_name_or_path does not exist" in err
    err = run_bad(["evaluate", "--validation_file", small_data[1]], capsys)
    assert "evaluate needs a trained model" in err


def test_incomplete_distributed_environment_exits_2(tmp_path):
    env = {**os.environ, "WORLD_SIZE": "2", "RANK": "0"}
    env.pop("MASTER_ADDR", None)
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "accel_trainer",
            "train",
            "--max_train_steps",
            "1",
            "--output_dir",
            str(tmp_path / "o"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO_ROOT,
        env=env,
    )
    assert done.returncode == 2
    assert "the distributed environment is incomplete" in done.stderr
    assert "Traceback" not in done.stderr


def test_help_answers_without_importing_torch():
    """`accel-trainer --help` must be instant: torch, transformers and datasets load lazily."""
    import subprocess
    import sys

    probe = (
        "import sys; from accel_trainer.cli import main; code = main(['--help']); "
        "heavy = [m for m in ('torch', 'transformers', 'datasets', 'accelerate') "
        "if m in sys.modules]; print('HEAVY', heavy); sys.exit(code)"
    )
    done = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert "usage: accel-trainer {train,evaluate,predict}" in done.stdout
    assert "HEAVY []" in done.stdout


def test_a_tracker_whose_package_is_missing_is_refused_up_front(tmp_path, capsys):
    import importlib.util

    missing = [name for name in ("wandb", "mlflow") if importlib.util.find_spec(name) is None]
    if not missing:
        pytest.skip("wandb and mlflow are both installed here")
    status = main(["train", "--report_to", missing[0], "--output_dir", str(tmp_path / "o")])
    assert status == 2
    assert f"--report_to {missing[0]} needs the {missing[0]} package" in capsys.readouterr().err
    assert not (tmp_path / "o").exists()


def test_train_help_shows_the_groups_in_order_and_booleans_as_flags():
    from accel_trainer.cli import build_parser

    text = build_parser(TrainConfig, "train").format_help()
    titles = [
        "task and model:",
        "data:",
        "batching:",
        "optimisation:",
        "checkpointing:",
        "evaluation:",
        "logging:",
        "runtime:",
        "ner options:",
        "re options:",
    ]
    lines = text.splitlines()
    assert [line for line in lines if line in titles] == titles
    for flag in ("--cpu", "--group_by_length", "--overwrite_output_dir", "--label_all_tokens"):
        assert any(line.split() and line.split()[0] == flag for line in lines), flag
        assert f"{flag} {flag[2:].upper()}" not in text and f"{flag} [" not in text
    assert "--seed SEED" in text  # options with a value still show it


@pytest.mark.parametrize(
    "flags, expected",
    [([], False), (["--cpu"], True), (["--cpu", "false"], False), (["--cpu=true"], True)],
)
def test_a_boolean_flag_takes_an_optional_value(flags, expected):
    assert parse_config(TrainConfig, "train", flags).runtime.cpu is expected


def test_evaluate_keeps_its_task_overrides(tmp_path):
    base = ["--model_name_or_path", "m", "--validation_file", "dev.conll"]
    config = parse_config(commands.EvalConfig, "evaluate", [*base, "--negative_label", "Other"])
    assert config.task_options.negative_label == "Other"
    assert config.task_options.tag_scheme is None  # the trained model's
    assert parse_config(commands.EvalConfig, "evaluate", base).command_line.startswith(
        "accel-trainer evaluate --model_name_or_path m"
    )


# {c} stands for `config`: the script, run over tests/, must not rewrite this file's samples.


# Misspelt commands, flags and values: the closest one, in one line (exact texts)


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["trian"],
            "unknown command: got 'trian'. Did you mean train? Use one of train, evaluate, "
            "predict, plot.",
        ),
        (
            ["plto", "outputs/run"],
            "unknown command: got 'plto'. Did you mean plot? Use one of train, evaluate, "
            "predict, plot.",
        ),
        (["fly"], "unknown command: got 'fly'. Use one of train, evaluate, predict, plot."),
        (
            ["--train_file", "a.conll"],
            "the command must come first: got '--train_file'. Use one of train, evaluate, "
            "predict, plot, e.g. `accel-trainer train --train_file ...`.",
        ),
        (
            ["train", "--trian_file", "a.conll"],
            "--trian_file is not an option of accel-trainer train: got '--trian_file'. Did you "
            "mean --train_file? See `accel-trainer train --help`.",
        ),
        (
            ["evaluate", "--validaton_file", "a.conll"],
            "--validaton_file is not an option of accel-trainer evaluate: got "
            "'--validaton_file'. Did you mean --validation_file? See `accel-trainer evaluate "
            "--help`.",
        ),
        (
            ["predict", "--inptu_file", "a.conll"],
            "--inptu_file is not an option of accel-trainer predict: got '--inptu_file'. Did "
            "you mean --input_file? See `accel-trainer predict --help`.",
        ),
        (
            ["train", "--learning_rate", "1e-3x"],
            "--learning_rate must be a number: got '1e-3x'. See `accel-trainer train --help`.",
        ),
        (
            ["train", "--lr_scheduler_type", "cosin"],
            "--lr_scheduler_type is not one of 'linear', 'cosine', 'constant_with_warmup', "
            "'constant': got 'cosin'. Did you mean cosine? See `accel-trainer train --help`.",
        ),
        (
            ["train", "--data_format", "cnll"],
            "--data_format is not one of ['auto', 'conll', 'jsonl', 'text', 'semeval2010']: got "
            "'cnll'. Did you mean conll?",
        ),
        (["train", "-h2"], "--help takes no value: got '2'. See `accel-trainer train --help`."),
        (
            ["plot", "outputs/run", "--outptu_file", "curves.png"],
            "--outptu_file is not an option of accel-trainer plot: got '--outptu_file'. Did you "
            "mean --output_file? See `accel-trainer plot --help`.",
        ),
        (
            ["plot", "outputs/run", "--outptu", "curves.png"],
            "--outptu is not an option of accel-trainer plot: got '--outptu'. Did you mean "
            "--output_file? See `accel-trainer plot --help`.",
        ),
        (
            ["predict", "--text_format", "doc"],
            "--text_format is not one of 'lines', 'document': got 'doc'. Did you mean "
            "document? See `accel-trainer predict --help`.",
        ),
        (
            ["predict", "--outptu", "x.jsonl"],  # output_file or output_format: no guess
            "--outptu is not an option of accel-trainer predict: got '--outptu'. See "
            "`accel-trainer predict --help`.",
        ),
        (
            ["plot", "outputs/a", "outputs/b"],
            "unexpected argument: got 'outputs/b'. Give one OUTPUT_DIR, and the PNG as "
            "--output_file FILE.",
        ),
        (["plot"], "OUTPUT_DIR is missing: got none. See `accel-trainer plot --help`."),
    ],
)
def test_misspelt_commands_flags_and_values_get_one_exact_line(capsys, argv, message):
    assert main(argv) == 2
    assert capsys.readouterr().err == f"accel-trainer: error: {message}\n"


def test_a_misspelt_option_or_value_in_a_config_file_gets_the_closest_one(tmp_path, capsys):
    path = tmp_path / "run.yaml"
    path.write_text("trian_file: a.conll\n")
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err == (
        f"accel-trainer: error: config file {path} has an unknown option: got 'trian_file'. Did "
        "you mean train_file? See `accel-trainer train --help`.\n"
    )
    path.write_text("epochs: 3\n")  # another tool's name for num_train_epochs
    assert main(["train", str(path)]) == 2
    assert "got 'epochs'. Did you mean num_train_epochs?" in capsys.readouterr().err
    path.write_text("lr_scheduler_type: cosin\n")
    assert main(["train", str(path)]) == 2
    assert capsys.readouterr().err == (
        "accel-trainer: error: --lr_scheduler_type is not one of ['linear', 'cosine', "
        "'constant_with_warmup', 'constant']: got 'cosin'. Did you mean cosine?\n"
    )


def test_the_top_level_usage_names_every_command(capsys):
    assert main(["--help"]) == 0
    usage = capsys.readouterr().out
    assert usage.startswith(
        "usage: accel-trainer {train,evaluate,predict} [CONFIG_FILE] [--option value ...]\n"
        "       accel-trainer plot OUTPUT_DIR [--output_file FILE.png]\n"
    )


# Data files plainly in another format: one line naming it and the flag that fixes it


def test_conll_given_to_task_re_exits_2_before_any_model(tmp_path, capsys, no_model_building):
    train = conll(tmp_path, "train.tsv", "Selegiline\tB-Chemical\n-\tO\n")
    argv = ["train", "--task", "re", "--train_file", train, "--output_dir", str(tmp_path / "o")]
    assert main(argv) == 2
    assert capsys.readouterr().err == (
        f"accel-trainer: error: --train_file {train} line 1 is a CoNLL token line (a token and "
        "its tag), not a relation example: got 'Selegiline\\tB-Chemical'. Use --task ner (the "
        "default) for NER files.\n"
    )
    assert not (tmp_path / "o").exists()


def test_evaluate_and_predict_name_the_model_task_instead_of_a_task_flag(
    tmp_path, capsys, monkeypatch
):
    from accel_trainer import prepare
    from accel_trainer.tasks.ner import NerTask

    saved = prepare.SavedModel(NerTask(), ["O", "B-PER"], None, None)
    monkeypatch.setattr(prepare, "load_saved", lambda config, overrides: saved)
    relation = str(tmp_path / "chemprot.txt")
    write_jsonl(relation, [{"text": "<< Aspirin >> blocks [[ COX-2 ]] .", "label": "INHIBITOR"}])
    got = repr('{"text": "<< Aspirin >> blocks [[ COX-2 ]] .", "label": "INHIBITOR"}')
    model = str(tmp_path / "model")
    problem = (
        f"line 1 is a JSON object with keys ['label', 'text'], like a relation extraction "
        f"example, not a CoNLL token line: got {got}. The model at {model} does task 'ner':"
    )
    argv = ["evaluate", "--model_name_or_path", model, "--validation_file", relation]
    assert main([*argv, "--output_dir", str(tmp_path / "eval")]) == 2
    assert capsys.readouterr().err == (
        f"accel-trainer: error: --validation_file {relation} {problem} give --validation_file in "
        "a format of that task, or a model trained with --task re.\n"
    )
    output = str(tmp_path / "out.txt")
    argv = ["predict", "--model_name_or_path", model, "--input_file", relation]
    assert main([*argv, "--output_file", output]) == 2
    assert capsys.readouterr().err == (
        f"accel-trainer: error: --input_file {relation} {problem} give --input_file in a format "
        "of that task, or a model trained with --task re.\n"
    )


def test_a_compile_failure_is_one_line(small_data, tmp_path, capsys, monkeypatch):
    """Inductor's reports run to thousands of lines; the user gets the option and the cause."""
    import torch
    from torch._dynamo.exc import BackendCompilerFailed

    def compile_that_fails(model, *args, **kwargs):
        def forward(*args, **kwargs):
            cause = RuntimeError("C++ compile error\n" + "include line\n" * 2000)
            raise BackendCompilerFailed(compile_that_fails, cause, None)

        model.forward = forward

    monkeypatch.setattr(torch.nn.Module, "compile", compile_that_fails)
    argv = ["train", "--train_file", small_data[0], "--output_dir", str(tmp_path / "out"),
            "--torch_compile", "--max_train_steps", "1"]  # fmt: skip
    assert main(argv) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err and err.count("include line") == 1
    assert err.strip().splitlines()[-1] == (
        "accel-trainer: error: --torch_compile could not compile the model: "
        "BackendCompilerFailed: RuntimeError: C++ compile error include line. Run without "
        '--torch_compile; TORCH_LOGS="+dynamo" shows the details.'
    )
    reset_accelerate()
