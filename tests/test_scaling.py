"""The same training on any topology: token-exact loss, schedules in optimizer steps, and
evaluation that counts every example once, on 1, 2 and 3 processes."""

import numpy as np
import pytest
from safetensors.torch import load_file

from accel_trainer import TrainConfig, commands
from tests.conftest import (
    evaluate_saved,
    read_json,
    read_jsonl,
    reset_accelerate,
    without_dropout,
)
from tests.test_multiprocess import accelerate_launch

# Weights after 6 steps must agree this closely across topologies; they move by ~1e-2.
TOLERANCE = 1e-5


def options(data, output_dir, **overrides):
    values = dict(
        train_file=data[0],
        validation_file=data[1],
        output_dir=str(output_dir),
        num_train_epochs=3,
        learning_rate=3e-3,
        warmup_ratio=0.3,
        logging_steps=1,
        per_device_eval_batch_size=2,
    )
    return {**values, **overrides}


def train_here(data, output_dir, **overrides):
    """One process, in this one; returns the output folder."""
    trainer = commands.build_trainer(
        TrainConfig.from_options(**options(data, output_dir, **overrides))
    )
    without_dropout(trainer)
    trainer.fit()
    reset_accelerate()
    return output_dir


def train_launched(data, output_dir, num_processes=2, **overrides):
    """Through `accelerate launch` on num_processes CPU processes; returns the output folder."""
    args = []
    for name, value in options(data, output_dir, **overrides).items():
        args += [f"--{name}", str(value)]
    done = accelerate_launch(args, hooked=True, num_processes=num_processes, NO_DROPOUT="1")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return output_dir


def max_difference(folder_a, folder_b) -> float:
    a, b = load_file(folder_a / "model.safetensors"), load_file(folder_b / "model.safetensors")
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def history(folder, key) -> list[float]:
    return [r[key] for r in read_jsonl(folder / "log_history.jsonl") if key in r]


EVAL_KEYS = ("eval_f1", "eval_precision", "eval_recall", "eval_accuracy", "eval_samples")


@pytest.mark.multiprocess
def test_one_and_two_processes_with_and_without_accumulation_train_the_same(scaling_data, tmp_path):
    reference = train_here(scaling_data, tmp_path / "1x32", per_device_train_batch_size=32)
    same = {
        "1 process x 8 x accumulation 4": train_here(
            scaling_data, tmp_path / "1x8x4", per_device_train_batch_size=8,
            gradient_accumulation_steps=4,
        ),
        "2 processes x 16": train_launched(
            scaling_data, tmp_path / "2x16", per_device_train_batch_size=16
        ),
        "2 processes x 4 x accumulation 4": train_launched(
            scaling_data, tmp_path / "2x4x4", per_device_train_batch_size=4, global_batch_size=32
        ),
    }  # fmt: skip
    results = read_json(reference / "all_results.json")
    assert results["global_step"] == 6
    for name, folder in same.items():
        difference = max_difference(reference, folder)
        print(f"{name}: max |weight difference| to 1 process x 32 = {difference:.2e}")
        assert difference < TOLERANCE, name
        assert history(folder, "learning_rate") == history(reference, "learning_rate"), name
        assert history(folder, "loss") == pytest.approx(history(reference, "loss"), rel=1e-5)
        other = read_json(folder / "all_results.json")
        assert other["global_step"] == 6
        assert other["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-5), name
        for key in EVAL_KEYS:
            assert other[key] == results[key], (name, key)

    # The transformers default, a mean per micro-batch, weighs short sentences' tokens more:
    # accumulating 4 micro-batches then no longer equals one batch of 32.
    batch_mean = train_here(
        scaling_data, tmp_path / "batch", per_device_train_batch_size=8,
        gradient_accumulation_steps=4, loss_normalization="batch",
    )  # fmt: skip
    difference = max_difference(reference, batch_mean)
    print(f"--loss_normalization batch, 1 x 8 x 4: max |weight difference| = {difference:.2e}")
    assert difference > 100 * TOLERANCE
    assert history(batch_mean, "loss")[0] != pytest.approx(history(reference, "loss")[0], rel=1e-5)


@pytest.mark.multiprocess
def test_three_processes_follow_the_same_schedule_and_score_seven_sentences_once(
    scaling_data, tmp_path
):
    one = train_here(scaling_data, tmp_path / "one", per_device_train_batch_size=8,
                     global_batch_size=24)  # fmt: skip
    three = train_launched(scaling_data, tmp_path / "three", num_processes=3,
                           per_device_train_batch_size=8, global_batch_size=24)  # fmt: skip
    # 64 sentences in steps of 24: 3 steps per epoch, the last one partial.
    assert read_json(one / "all_results.json")["global_step"] == 9
    assert history(three, "learning_rate") == history(one, "learning_rate")
    results, other = read_json(one / "all_results.json"), read_json(three / "all_results.json")
    assert results["eval_samples"] == other["eval_samples"] == 7
    assert other["num_processes"] == 3
    # The last step of each epoch has 16 of 24 sentences on one process; on three, Accelerate
    # fills the missing third with sentences from the epoch's start, so only the learning rate
    # (not the weights) is compared here.
    assert np.isfinite(other["eval_loss"])

    # One saved model scored on 1, 2 and 3 processes: the same metrics, each sentence once.
    scores = {1: evaluate_saved(one, scaling_data[1], tmp_path / "eval-1")}
    for processes in (2, 3):
        args = ["--model_name_or_path", str(one), "--validation_file", scaling_data[1],
                "--output_dir", str(tmp_path / f"eval-{processes}"),
                "--per_device_eval_batch_size", "2"]  # fmt: skip
        done = accelerate_launch(args, command_name="evaluate", num_processes=processes)
        assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
        scores[processes] = read_json(tmp_path / f"eval-{processes}" / "eval_results.json")
    for processes in (2, 3):
        assert scores[processes].pop("eval_loss") == pytest.approx(scores[1]["eval_loss"], rel=1e-6)
        assert scores[processes] == {k: v for k, v in scores[1].items() if k != "eval_loss"}
    assert scores[1]["eval_samples"] == 7


SHARDED_CONFIGS = {
    "fsdp.yaml": ("FSDP", "fsdp_config", {"fsdp_version": 2}),
    "deepspeed_zero2.yaml": ("DEEPSPEED", "deepspeed_config", {"zero_stage": 2}),
    "deepspeed_zero3.yaml": ("DEEPSPEED", "deepspeed_config", {"zero3_save_16bit_model": True}),
}


@pytest.mark.parametrize("name", sorted(SHARDED_CONFIGS))
def test_sharded_configs_are_what_accelerate_reads(name):
    import os

    from accelerate.commands.config.config_args import load_config_from_file

    from tests.conftest import REPO_ROOT

    path = os.path.join(REPO_ROOT, "accelerate_configs", name)
    distributed_type, section, expected = SHARDED_CONFIGS[name]
    config = load_config_from_file(path)
    assert config.distributed_type.value == distributed_type
    assert expected.items() <= getattr(config, section).items()
    with open(path, encoding="utf-8") as handle:
        assert f"--config_file accelerate_configs/{name}" in handle.read()  # usage documented
