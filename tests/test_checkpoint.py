"""Checkpoints: atomic commit, rotation, and resume that reproduces the uninterrupted run."""

import pytest
import torch

from accel_trainer import TrainConfig, commands
from accel_trainer.config import validate
from accel_trainer.errors import ConfigError
from accel_trainer.storage.manifest import committed_checkpoints, read_manifest
from tests.conftest import (
    computed_records,
    read_json,
    reset_accelerate,
    trace_consumed_rows,
    without_dropout,
)


class Interrupted(Exception):
    """Stands for the process being killed right after a checkpoint was committed."""


def config(small_data, output_dir, **overrides):
    options = dict(
        train_file=small_data[0],
        validation_file=small_data[1],
        output_dir=str(output_dir),
        num_train_epochs=2,
        per_device_train_batch_size=5,
        gradient_accumulation_steps=3,
        logging_steps=1,
        checkpointing_steps="1",
        learning_rate=3e-3,
        warmup_ratio=0.2,
    )
    return TrainConfig.from_options(**{**options, **overrides})


def train(small_data, output_dir, stop_at=None, dropout=True, **overrides):
    """Train; with stop_at, stop as if killed right after the checkpoint of that step.
    trainer.consumed lists (micro_step, step, row ids) of every micro-batch trained on."""
    trainer = commands.build_trainer(config(small_data, output_dir, **overrides))
    if not dropout:
        without_dropout(trainer)
    trainer.consumed = []
    trace_consumed_rows(trainer, lambda *entry: trainer.consumed.append(entry))
    if stop_at is not None:
        original = trainer.save_checkpoint

        def save_then_die():
            path = original()
            if trainer.state.step == stop_at:
                raise Interrupted
            return path

        trainer.save_checkpoint = save_then_die
    try:
        trainer.results = trainer.fit()
    except Interrupted:
        pass
    reset_accelerate()
    return trainer


def final_state(trainer):
    model = trainer.accelerator.unwrap_model(trainer.model)
    optimizer = trainer.optimizer.optimizer.state_dict()
    tensors = [t for s in optimizer["state"].values() for t in s.values() if torch.is_tensor(t)]
    return model.state_dict(), tensors, trainer.optimizer.param_groups[0]["lr"]


@pytest.fixture(scope="module")
def uninterrupted(small_data, tmp_path_factory):
    """Uninterrupted runs, by checkpointing strategy, trained on first use."""
    runs = {}

    def run(every):
        if every not in runs:
            out = tmp_path_factory.mktemp("full") / "out"
            trainer = train(small_data, out, checkpointing_steps=every)
            runs[every] = trainer, final_state(trainer)
        return runs[every]

    return run


# 48 sentences in batches of 5 = 10 micro-batches per epoch, 3 per optimizer step: 3+3+3+1, so
# 4 optimizer steps per epoch, 8 in all. Step 2 is mid-epoch; step 4 ends epoch 0 with a
# short step (before that epoch's evaluation, or after it with epoch checkpoints); step 5
# is inside epoch 1.
@pytest.mark.parametrize("stop_at, every", [(2, "1"), (4, "1"), (5, "1"), (4, "epoch"), (8, "1")])
def test_resume_reproduces_the_uninterrupted_run_bit_for_bit(
    small_data, tmp_path, uninterrupted, stop_at, every
):
    full_trainer, (full_weights, full_optimizer, full_lr) = uninterrupted(every)
    out = tmp_path / "out"
    stopped = train(small_data, out, stop_at=stop_at, checkpointing_steps=every)
    assert not (out / "model.safetensors").exists()
    resumed = train(small_data, out, resume_from_checkpoint="latest", checkpointing_steps=every)
    # The same examples, in the same micro-batches, in the same order.
    assert stopped.consumed + resumed.consumed == full_trainer.consumed
    weights, optimizer, lr = final_state(resumed)
    assert resumed.state.step == 8
    assert all(torch.equal(weights[k], full_weights[k]) for k in full_weights)
    assert len(optimizer) == len(full_optimizer)
    assert all(torch.equal(a, b) for a, b in zip(optimizer, full_optimizer, strict=True))
    assert lr == full_lr
    # losses, rates, evaluations, padding
    assert computed_records(resumed.log_history) == computed_records(full_trainer.log_history)
    results, full_results = read_json(out / "all_results.json"), full_trainer.results
    assert results["eval_f1"] == full_results["eval_f1"]
    assert results["train_loss"] == full_results["train_loss"]


def as_saved_by_the_previous_version(checkpoint) -> None:
    """Rewrite a checkpoint's trainer_state.json as the version before the library split wrote
    it (`epoch`, totals as lists, `--loss_normalization tokens`, every task's options), with its
    manifest entry to match."""
    import hashlib
    import json

    path = checkpoint / "trainer_state.json"
    state = read_json(path)
    state["epoch"] = state.pop("epoch_index")
    for name in ("run_totals", "pending_totals"):
        totals = state[name]
        state[name] = [
            totals[k] for k in ("loss_sum", "loss_count", "real_tokens", "padded_tokens")
        ]
    state["options"]["loss_normalization"] = "tokens"
    state["options"].update(entity_markers="<e1>,</e1>,<e2>,</e2>", typed_markers=False)
    path.write_text(json.dumps(state))
    manifest = read_json(checkpoint / "manifest.json")
    data = path.read_bytes()
    entry = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    manifest["files"]["trainer_state.json"] = entry
    (checkpoint / "manifest.json").write_text(json.dumps(manifest))


def test_a_checkpoint_of_the_previous_version_resumes_bit_for_bit(
    small_data, tmp_path, uninterrupted
):
    """A job requeued across the upgrade continues where it was, as if never stopped."""
    full_trainer, (full_weights, _, _) = uninterrupted("1")
    out = tmp_path / "out"
    train(small_data, out, stop_at=5)
    as_saved_by_the_previous_version(out / "checkpoint-5")
    resumed = train(small_data, out, resume_from_checkpoint="auto")
    assert resumed.state.step == 8 and resumed.consumed[0][1] == 5
    weights = final_state(resumed)[0]
    assert all(torch.equal(weights[k], full_weights[k]) for k in full_weights)


def test_torn_checkpoints_are_skipped_and_kept_temporary_folders_removed(small_data, tmp_path):
    out = tmp_path / "out"
    train(small_data, out, stop_at=3)
    (out / ".tmp-checkpoint-4").mkdir()  # killed during a save
    (out / "checkpoint-9").mkdir()  # a user's own folder, no manifest
    (out / "checkpoint-9" / "model.safetensors").write_text("half")
    resumed = train(small_data, out, resume_from_checkpoint="auto", save_total_limit=2)
    assert resumed.state.step == 8
    assert not (out / ".tmp-checkpoint-4").exists()
    assert (out / "checkpoint-9" / "model.safetensors").read_text() == "half"  # never deleted
    assert [step for step, _ in committed_checkpoints(str(out))] == [7, 8]  # rotated to 2
    assert read_manifest(str(out / "checkpoint-8"), verify_checksums=True)["world_size"] == 1


def test_resume_refuses_other_options_and_altered_checkpoints(small_data, tmp_path):
    out = tmp_path / "out"
    train(small_data, out, stop_at=2)
    with pytest.raises(ConfigError, match="saved with other training options"):
        train(small_data, out, resume_from_checkpoint="latest", learning_rate=1e-3)
    reset_accelerate()
    with open(out / "checkpoint-2" / "trainer_state.json", "a") as handle:
        handle.write(" ")
    with pytest.raises(ConfigError, match="is not a committed checkpoint"):
        train(small_data, out, resume_from_checkpoint=str(out / "checkpoint-2"))
    reset_accelerate()
    empty = tmp_path / "empty"
    with pytest.raises(ConfigError, match="found no committed checkpoint"):
        train(small_data, empty, resume_from_checkpoint="latest")


def test_a_fresh_run_does_not_mix_with_an_earlier_runs_checkpoints(small_data, tmp_path):
    out = tmp_path / "out"
    train(small_data, out, stop_at=2)
    with pytest.raises(ConfigError, match="holds checkpoints of an earlier run"):
        train(small_data, out)
    reset_accelerate()
    trainer = train(small_data, out, overwrite_output_dir=True, checkpointing_steps="no")
    assert trainer.state.step == 8 and committed_checkpoints(str(out)) == []


def test_sigterm_commits_a_checkpoint_exits_75_and_resume_completes_bit_exactly(
    small_data, tmp_path
):
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from tests.conftest import REPO_ROOT, read_json

    def command(out, *extra):
        return [
            sys.executable,
            "-m",
            "accel_trainer",
            "train",
            "--train_file",
            small_data[0],
            "--output_dir",
            str(out),
            "--num_train_epochs",
            "6",
            "--per_device_train_batch_size",
            "2",
            "--logging_steps",
            "1",
            *extra,
        ]

    def run(args):
        return subprocess.run(args, capture_output=True, text=True, timeout=300, cwd=REPO_ROOT)

    full, stopped = tmp_path / "full", tmp_path / "stopped"
    assert run(command(full)).returncode == 0
    process = subprocess.Popen(
        command(stopped),
        cwd=REPO_ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    log = stopped / "log_history.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and not (log.exists() and log.read_text().count("\n") >= 5):
        time.sleep(0.05)
    process.send_signal(signal.SIGTERM)
    _, err = process.communicate(timeout=120)
    assert process.returncode == 75, err[-2000:]
    assert "stopped by a signal at step" in err
    step = read_json(next(stopped.glob("checkpoint-*")) / "trainer_state.json")["step"]
    assert 5 <= step < 144  # 24 steps per epoch, 6 epochs
    assert not (stopped / "model.safetensors").exists()
    resumed = run(command(stopped, "--resume_from_checkpoint", "auto"))
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    expected, got = load_file(full / "model.safetensors"), load_file(stopped / "model.safetensors")
    assert all(torch.equal(expected[k], got[k]) for k in expected)


@pytest.mark.multiprocess
def test_sigkill_at_random_moments_never_loses_the_run(small_data, tmp_path):
    """Kill -9 the run again and again (often inside a save), resume each time with auto: the
    final model equals the uninterrupted run's."""
    import random
    import signal
    import subprocess
    import sys
    import time

    from safetensors.torch import load_file

    from tests.conftest import REPO_ROOT

    def command(out):
        return [
            sys.executable,
            "-m",
            "accel_trainer",
            "train",
            "--train_file",
            small_data[0],
            "--output_dir",
            str(out),
            "--num_train_epochs",
            "8",  # 192 steps: ten kills, a few steps apart, land before the end
            "--per_device_train_batch_size",
            "2",
            "--logging_steps",
            "1",
            "--checkpointing_steps",
            "1",
            "--save_total_limit",
            "2",
            "--resume_from_checkpoint",
            "auto",
        ]

    full, killed = tmp_path / "full", tmp_path / "killed"
    done = subprocess.run(command(full), capture_output=True, timeout=300, cwd=REPO_ROOT)
    assert done.returncode == 0
    rng = random.Random(0)
    kills = torn_seen = 0
    for _ in range(30):
        process = subprocess.Popen(
            command(killed), cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        log = killed / "log_history.jsonl"
        start_lines = log.read_text().count("\n") if log.exists() else 0
        deadline = time.time() + 120
        while process.poll() is None and time.time() < deadline:
            if log.exists() and log.read_text().count("\n") > start_lines:
                break
            time.sleep(0.02)
        time.sleep(rng.uniform(0, 0.4))
        if process.poll() is not None:  # finished before the kill
            break
        process.send_signal(signal.SIGKILL)
        process.wait(timeout=60)
        kills += 1
        torn_seen += any(p.name.startswith(".tmp-checkpoint-") for p in killed.iterdir())
        if kills >= 10:
            break
    final = subprocess.run(command(killed), capture_output=True, timeout=300, cwd=REPO_ROOT)
    assert final.returncode == 0, final.stderr[-2000:]
    assert kills >= 10
    expected, got = load_file(full / "model.safetensors"), load_file(killed / "model.safetensors")
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    assert not any(p.name.startswith(".tmp-checkpoint-") for p in killed.iterdir())
    print(f"{kills} kills, {torn_seen} left a torn save, final model bit-identical")


SCRIPTED_F1 = {1: 0.5, 2: 0.6, 3: 0.55, 4: 0.58, 5: 0.59, 6: 0.7, 7: 0.8, 8: 0.9}


def scripted_evaluation(monkeypatch):
    """eval_f1 follows SCRIPTED_F1 by optimizer step: best at step 2, then three worse ones."""
    from accel_trainer import AccelerateTrainer

    monkeypatch.setattr(
        AccelerateTrainer, "evaluate", lambda self: {"eval_f1": SCRIPTED_F1[self.state.step]}
    )


def test_early_stopping_counts_across_a_resume(small_data, tmp_path, monkeypatch):
    scripted_evaluation(monkeypatch)
    options = dict(
        eval_steps=1, metric_for_best_model="eval_f1", early_stopping_patience=3, save_total_limit=1
    )
    uninterrupted = train(small_data, tmp_path / "full", **options)
    assert uninterrupted.state.step == 5  # 3 evaluations without a better F1 after step 2
    assert uninterrupted.results["best_metric"] == 0.6
    assert uninterrupted.results["best_step"] == 2 and uninterrupted.results["stopped_early"]
    out = tmp_path / "out"
    train(small_data, out, stop_at=4, **options)  # killed after two bad evaluations
    resumed = train(small_data, out, resume_from_checkpoint="latest", **options)
    assert resumed.state.step == 5 and resumed.state.evaluations_without_improvement == 3
    assert resumed.results["best_step"] == 2
    # The best checkpoint survives rotation beside the newest one.
    assert [step for step, _ in committed_checkpoints(str(out))] == [2, 5]


def checkpoint_weights(folder):
    from safetensors.torch import load_file

    return load_file(folder / "model.safetensors")


def test_load_best_model_at_end_saves_the_best_evaluations_weights(
    small_data, tmp_path, monkeypatch
):
    scripted_evaluation(monkeypatch)
    options = dict(
        eval_steps=1,
        metric_for_best_model="eval_f1",
        early_stopping_patience=3,
        load_best_model_at_end=True,
        checkpointing_steps="no",  # the best evaluations are checkpointed all the same
        save_total_limit=1,
    )
    out = tmp_path / "out"
    train(small_data, out, stop_at=4, **{**options, "checkpointing_steps": "4"})
    resumed = train(small_data, out, resume_from_checkpoint="latest", **options)
    assert resumed.state.step == 5 and resumed.results["best_step"] == 2
    assert resumed.results["eval_f1"] == 0.6  # the metrics describe the saved model
    best, saved = checkpoint_weights(out / "checkpoint-2"), checkpoint_weights(out)
    assert saved.keys() == best.keys()
    assert all(torch.equal(saved[k], best[k]) for k in best)
    # Rotation kept the best beside the newest (the one the run resumed from).
    assert [step for step, _ in committed_checkpoints(str(out))] == [2, 4]
    later = checkpoint_weights(out / "checkpoint-4")
    assert not all(torch.equal(saved[k], later[k]) for k in best)


def test_load_best_model_at_end_needs_a_metric():
    with pytest.raises(ConfigError, match="--load_best_model_at_end needs --metric_for_best_model"):
        validate(TrainConfig.from_options(load_best_model_at_end=True))


def steps_of(consumed):
    """The set of row ids each optimizer step trained on."""
    rows = {}
    for _, step, row_ids in consumed:
        rows.setdefault(step, set()).update(row_ids)
    return rows


def test_topology_change_keeps_every_steps_examples(small_data, tmp_path, uninterrupted):
    full_trainer, (full_weights, _, _) = uninterrupted("1")  # batch 5 x accumulation 3
    out = tmp_path / "out"
    train(small_data, out, stop_at=2)
    with pytest.raises(ConfigError, match="add --allow_topology_change"):
        train(small_data, out, resume_from_checkpoint="latest", per_device_train_batch_size=3)
    reset_accelerate()
    with pytest.raises(ConfigError, match=r"= 15 examples per optimizer step .* = 9"):
        train(
            small_data,
            out,
            resume_from_checkpoint="latest",
            per_device_train_batch_size=3,
            allow_topology_change=True,
        )
    reset_accelerate()
    resumed = train(
        small_data,
        out,
        resume_from_checkpoint="latest",
        per_device_train_batch_size=3,
        gradient_accumulation_steps=5,
        allow_topology_change=True,
    )
    assert resumed.state.step == 8
    expected = steps_of(full_trainer.consumed)
    assert steps_of(resumed.consumed) == {step: expected[step] for step in range(2, 8)}
    # Not bit-exact (other padding, other micro-batch means) but the same training.
    weights = final_state(resumed)[0]
    assert not all(torch.equal(weights[k], full_weights[k]) for k in full_weights)
    losses = [r["loss"] for r in resumed.log_history if "loss" in r]
    full_losses = [r["loss"] for r in full_trainer.log_history if "loss" in r]
    assert losses == pytest.approx(full_losses, rel=0.05)
    assert resumed.results["eval_loss"] == pytest.approx(
        full_trainer.results["eval_loss"], rel=0.05
    )


def test_a_checkpoint_without_rng_state_is_refused_unless_topology_may_change(small_data, tmp_path):
    import json

    out = tmp_path / "out"
    train(small_data, out, stop_at=2)
    folder = out / "checkpoint-2"
    (folder / "random_states_0.pkl").unlink()
    manifest = read_json(folder / "manifest.json")
    del manifest["files"]["random_states_0.pkl"]
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ConfigError, match=r"no RNG state for process\(es\) \[0\]"):
        train(small_data, out, resume_from_checkpoint="latest")
    reset_accelerate()
    resumed = train(small_data, out, resume_from_checkpoint="latest", allow_topology_change=True)
    assert resumed.state.step == 8


def test_rotation_never_leaves_less_than_the_newest_and_the_best(small_data, tmp_path, monkeypatch):
    import os
    import shutil

    from accel_trainer import AccelerateTrainer

    monkeypatch.setattr(
        AccelerateTrainer,
        "evaluate",
        lambda self: {"eval_f1": 0.9 if self.state.step == 2 else 0.5},
    )
    out = tmp_path / "out"
    after_each_deletion = []
    remove = shutil.rmtree

    def watched_remove(path, *args, **kwargs):
        remove(path, *args, **kwargs)
        if "checkpoint-" in os.path.basename(path):  # renamed aside, then deleted
            after_each_deletion.append([step for step, _ in committed_checkpoints(str(out))])

    monkeypatch.setattr(shutil, "rmtree", watched_remove)
    train(small_data, out, eval_steps=1, metric_for_best_model="eval_f1", save_total_limit=2)
    # From step 3 on each commit makes 3 checkpoints, one too many: one goes, never the best.
    assert after_each_deletion == [[2, step] for step in range(3, 9)]


def test_a_run_that_skipped_a_nan_step_resumes_and_reports_a_finite_train_loss(
    small_data, tmp_path
):
    """The skipped step's NaN is shown in the log, kept out of train_loss, and does not make
    the checkpoints after it unusable."""
    import json
    import math

    from tests.conftest import inject_nan

    out = tmp_path / "out"
    options = dict(logging_steps=10, max_train_steps=6, checkpointing_steps="2", num_train_epochs=1)
    trainer = commands.build_trainer(config(small_data, out, **options))
    inject_nan(trainer, {7})  # a micro-batch of step 3 (3 per step)
    original = trainer.save_checkpoint

    def save_then_die():
        path = original()
        if trainer.state.step == 4:
            raise Interrupted
        return path

    trainer.save_checkpoint = save_then_die
    with pytest.raises(Interrupted):
        trainer.fit()
    reset_accelerate()
    saved = read_json(out / "checkpoint-4" / "trainer_state.json")
    assert (
        saved["nonfinite_steps"] == 1
        and saved["pending_totals"]["loss_sum"] != saved["pending_totals"]["loss_sum"]
    )  # NaN: the next log record shows it
    resumed = commands.build_trainer(
        config(small_data, out, resume_from_checkpoint="auto", **options)
    )
    results = resumed.fit()
    reset_accelerate()
    assert results["global_step"] == 6 and results["nonfinite_steps"] == 1
    assert results["optimizer_steps"] == 5
    text = (out / "all_results.json").read_text()
    json.loads(text, parse_constant=lambda name: pytest.fail(f"{name} in all_results.json"))
    assert math.isnan([r["loss"] for r in resumed.log_history if "loss" in r][-1])
