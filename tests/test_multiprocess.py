"""Two real processes on loopback (gloo), launched the way users launch them."""

import os
import subprocess
import sys

import pytest
import torch

from accel_trainer.cli import main
from tests.conftest import REPO_ROOT, evaluate_saved, free_port, read_json

pytestmark = pytest.mark.multiprocess
LAUNCH_TIMEOUT_S = 300


def accelerate_launch(args, command_name="train", config="cpu_2proc.yaml"):
    command = [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        os.path.join(REPO_ROOT, "accelerate_configs", config),
        "--main_process_port",
        str(free_port()),
        "-m",
        "accel_trainer",
        command_name,
        *args,
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(
        command,
        capture_output=True,
        text=True,
        timeout=LAUNCH_TIMEOUT_S,
        cwd=REPO_ROOT,
        env=env,
        start_new_session=True,
    )


def test_two_processes_train_once_and_count_each_eval_example_once(small_data, tmp_path, capsys):
    train, dev = small_data
    out = tmp_path / "out"
    done = accelerate_launch(
        [
            "--train_file",
            train,
            "--validation_file",
            dev,
            "--output_dir",
            str(out),
            "--num_train_epochs",
            "6",
            "--learning_rate",
            "3e-3",
            "--per_device_train_batch_size",
            "4",
            "--per_device_eval_batch_size",
            "4",
        ]
    )
    output = done.stdout + done.stderr
    assert done.returncode == 0, output[-3000:]
    results = read_json(out / "all_results.json")
    assert results["num_processes"] == 2
    # 48 sentences over 2 processes x 4 = 6 optimizer steps per epoch
    assert results["global_step"] == 36
    # 37 dev sentences: the last batch is padded across processes, yet each counts once
    assert results["eval_samples"] == 37
    assert results["eval_f1"] > 0.3  # it learned, so the comparisons below are not of zeros
    model_folders = [root for root, _, files in os.walk(tmp_path) if "config.json" in files]
    assert model_folders == [str(out)]
    assert output.count("train:   0%") == 1  # one progress bar: the main process's
    assert output.count("world size 2, device cpu") == 1

    # The same saved model scored by one process gives the same numbers.
    capsys.readouterr()
    single = evaluate_saved(out, dev, tmp_path / "single")
    for key in ("eval_samples", "eval_f1", "eval_precision", "eval_recall", "eval_accuracy"):
        assert single[key] == pytest.approx(results[key], abs=1e-12), key

    # And so do two processes running `evaluate`.
    done = accelerate_launch(
        [
            "--model_name_or_path",
            str(out),
            "--validation_file",
            dev,
            "--output_dir",
            str(tmp_path / "double"),
            "--per_device_eval_batch_size",
            "5",
        ],
        command_name="evaluate",
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    double = read_json(tmp_path / "double" / "all_results.json")
    assert double.pop("eval_loss") == pytest.approx(single.pop("eval_loss"), rel=1e-5)
    assert double == single

    # `predict` on two processes writes the same file, in the same order, as on one; with a
    # short max_seq_length every sentence is cut into windows spread over both processes.
    predict_args = [
        "--model_name_or_path",
        str(out),
        "--input_file",
        dev,
        "--max_seq_length",
        "16",
        "--per_device_eval_batch_size",
        "3",
    ]
    assert main(["predict", *predict_args, "--output_file", str(tmp_path / "one.conll")]) == 0
    done = accelerate_launch(
        [*predict_args, "--output_file", str(tmp_path / "two.conll")], command_name="predict"
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    one = (tmp_path / "one.conll").read_text()
    assert (tmp_path / "two.conll").read_text() == one
    assert one.count("\n\n") == 37


def test_two_process_resume_reproduces_the_uninterrupted_run(small_data, tmp_path):
    """Resume a two-process run from its step-3 checkpoint (mid-epoch): same final weights."""
    import shutil

    from safetensors.torch import load_file

    train, dev = small_data
    args = [
        "--train_file",
        train,
        "--validation_file",
        dev,
        "--num_train_epochs",
        "2",
        "--per_device_train_batch_size",
        "4",
        "--gradient_accumulation_steps",
        "2",
        "--checkpointing_steps",
        "1",
        "--logging_steps",
        "1",
    ]
    full = tmp_path / "full"
    done = accelerate_launch([*args, "--output_dir", str(full)])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    # What a run killed after step 3 leaves: checkpoints up to 3, no final model.
    partial = tmp_path / "partial"
    shutil.copytree(full, partial)
    for path in partial.iterdir():
        step = path.name.removeprefix("checkpoint-")
        if (step.isdigit() and int(step) > 3) or path.suffix in (".json", ".safetensors"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()
    done = accelerate_launch(
        [*args, "--output_dir", str(partial), "--resume_from_checkpoint", "auto"]
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "resumed from" in done.stdout + done.stderr
    expected = load_file(full / "model.safetensors")
    resumed = load_file(partial / "model.safetensors")
    assert all(torch.equal(expected[k], resumed[k]) for k in expected)
    assert read_json(partial / "all_results.json")["global_step"] == 6
    assert (partial / "log_history.jsonl").read_text() == (full / "log_history.jsonl").read_text()
