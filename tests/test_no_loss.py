"""Nothing lost, nothing silent: a crash, a typo, a damaged file or a full disk never costs a user
what they have, and nothing damaged is ever loaded as if it were good. Each test asserts the exit
code, the message, and that the user's files are byte-identical afterwards."""

import hashlib
import json
import logging
import os
import shutil
import signal
import subprocess

import pytest

from accel_trainer.cli import main
from accel_trainer.storage import output_folder
from accel_trainer.storage.commit import MODEL_MANIFEST, MODEL_TEMP, final_model_problem
from accel_trainer.storage.manifest import committed_checkpoints
from tests.conftest import read_json, reset_accelerate
from tests.test_checkpoint import train as train_in_process

# The options of tests.test_checkpoint.config, as flags: 8 optimizer steps, a checkpoint each.
RUN_FLAGS = [
    "--num_train_epochs", "2", "--per_device_train_batch_size", "5",
    "--gradient_accumulation_steps", "3", "--logging_steps", "1", "--checkpointing_steps", "1",
    "--learning_rate", "3e-3", "--warmup_ratio", "0.2",
]  # fmt: skip


def run(args: list[str], capsys) -> tuple[int, str]:
    """Exit code and stderr of `accel-trainer ARGS` run in this process."""
    capsys.readouterr()
    code = main([str(arg) for arg in args])
    reset_accelerate()
    return code, capsys.readouterr().err


def train_flags(small_data, out, *extra) -> list[str]:
    return ["train", "--train_file", small_data[0], "--validation_file", small_data[1],
            "--output_dir", out, *RUN_FLAGS, *extra]  # fmt: skip


def snapshot(folder) -> dict[str, str]:
    """sha256 of every file below `folder`, by relative path."""
    found = {}
    for root, _, names in os.walk(folder):
        for name in names:
            path = os.path.join(root, name)
            with open(path, "rb") as handle:
                found[os.path.relpath(path, folder)] = hashlib.sha256(handle.read()).hexdigest()
    return found


def flip_byte(path, offset: int = -100) -> None:
    with open(path, "r+b") as handle:
        handle.seek(offset, os.SEEK_END)
        value = handle.read(1)
        handle.seek(-1, os.SEEK_CUR)
        handle.write(bytes([value[0] ^ 0xFF]))


@pytest.fixture(scope="module")
def stopped_run(small_data, tmp_path_factory):
    """A run killed right after committing checkpoint-3 (of 8 steps): checkpoints 1 to 3."""
    out = tmp_path_factory.mktemp("stopped") / "out"
    train_in_process(small_data, out, stop_at=3)
    return out


@pytest.fixture(scope="module")
def finished_run(small_data, tmp_path_factory):
    """A whole run of 8 steps, a checkpoint at each, and its final model."""
    out = tmp_path_factory.mktemp("finished") / "out"
    train_in_process(small_data, out)
    return out


@pytest.fixture
def stopped(stopped_run, tmp_path):
    copy = tmp_path / "out"
    shutil.copytree(stopped_run, copy)
    return copy


@pytest.fixture
def finished(finished_run, tmp_path):
    copy = tmp_path / "model"
    shutil.copytree(finished_run, copy)
    return copy


# 1. Start-up deletes nothing it did not write; unverified checkpoints are skipped or refused.


def test_a_users_checkpoint_named_folder_survives_and_auto_says_it_starts_fresh(
    small_data, tmp_path, capsys, caplog
):
    out = tmp_path / "out"
    own = out / "checkpoint-500"
    own.mkdir(parents=True)
    (own / "config.json").write_text('{"mine": true}')
    (own / "model.safetensors").write_bytes(b"my weights")
    before = snapshot(own)
    code, _ = run(train_flags(small_data, out, "--resume_from_checkpoint", "auto",
                              "--max_train_steps", "2"), capsys)  # fmt: skip
    assert code == 0
    assert snapshot(own) == before
    assert "skipping" in caplog.text and "checkpoint-500: it has no manifest.json" in caplog.text
    assert "STARTS FROM STEP 0" in caplog.text


def test_a_named_checkpoint_that_does_not_verify_is_refused_and_kept(small_data, stopped, capsys):
    (stopped / "checkpoint-3" / "manifest.json").write_text('{"files": ')  # torn
    before = snapshot(stopped)
    code, err = run(
        train_flags(small_data, stopped, "--resume_from_checkpoint", stopped / "checkpoint-3"),
        capsys,
    )
    assert code == 2
    assert "is not a committed checkpoint that verifies" in err and "cannot be read" in err
    assert snapshot(stopped) == before


def test_a_new_checkpoint_never_deletes_an_unverified_folder_in_its_way(small_data, tmp_path):
    out = tmp_path / "out"
    (out / "checkpoint-2").mkdir(parents=True)
    (out / "checkpoint-2" / "notes.txt").write_text("my notes")
    train_in_process(small_data, out, resume_from_checkpoint="auto", max_train_steps=3)
    assert (out / "checkpoint-2.unverified-1" / "notes.txt").read_text() == "my notes"
    assert [step for step, _ in committed_checkpoints(str(out))] == [1, 2, 3]


# 5. Every file of the resumed checkpoint is verified by sha256; auto/latest fall back.


@pytest.mark.parametrize("damaged", ["model.safetensors", "optimizer.bin", "random_states_0.pkl"])
def test_a_flipped_byte_falls_back_to_the_newest_checkpoint_that_verifies(
    small_data, stopped, capsys, caplog, damaged
):
    caplog.set_level("INFO")
    flip_byte(stopped / "checkpoint-3" / damaged)
    damaged_copy = snapshot(stopped / "checkpoint-3")
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "latest"), capsys)
    assert code == 0, err
    assert f"{damaged} does not match the sha256 it was saved with" in caplog.text
    assert "resumed from " + str(stopped / "checkpoint-2") in caplog.text
    # Step 3 was saved again; the damaged one was set aside, not deleted.
    assert snapshot(stopped / "checkpoint-3.unverified-1") == damaged_copy


def test_with_no_checkpoint_that_verifies_latest_stops_and_auto_starts_over_loudly(
    small_data, stopped, capsys, caplog
):
    for step in (1, 2, 3):
        flip_byte(stopped / f"checkpoint-{step}" / "model.safetensors")
    before = snapshot(stopped)
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "latest"), capsys)
    assert code == 2 and "found no committed checkpoint that verifies" in err
    assert snapshot(stopped) == before
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto"), capsys)
    assert code == 0
    assert "none of the 3 checkpoint folder(s)" in caplog.text
    assert "STARTS FROM STEP 0" in caplog.text


def test_an_unreadable_rng_state_is_an_error_even_when_its_hash_matches(
    small_data, stopped, capsys
):
    folder = stopped / "checkpoint-3"
    (folder / "random_states_0.pkl").write_bytes(b"not a pickle")
    manifest = read_json(folder / "manifest.json")  # as if saved like that
    manifest["files"]["random_states_0.pkl"] = {
        "size": len(b"not a pickle"),
        "sha256": hashlib.sha256(b"not a pickle").hexdigest(),
    }
    (folder / "manifest.json").write_text(json.dumps(manifest))
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", folder), capsys)
    assert code == 2
    assert "has an unreadable RNG state random_states_0.pkl" in err


# 6. Manifest entries must be regular files inside the checkpoint folder.


@pytest.mark.parametrize("name", ["../outside.bin", "/dev/zero", "link.bin", "sub/../../x"])
def test_a_manifest_naming_files_outside_the_folder_makes_it_invalid(
    small_data, stopped, capsys, name
):
    folder = stopped / "checkpoint-3"
    (stopped / "outside.bin").write_bytes(b"x")
    os.symlink(stopped / "outside.bin", folder / "link.bin")
    manifest = read_json(folder / "manifest.json")
    manifest["files"][name] = {"size": 1, "sha256": "0" * 64}
    (folder / "manifest.json").write_text(json.dumps(manifest))
    signal.alarm(60)  # /dev/zero once hashed forever
    try:
        code, err = run(
            train_flags(small_data, stopped, "--resume_from_checkpoint", folder), capsys
        )
    finally:
        signal.alarm(0)
    assert code == 2
    assert "is not a committed checkpoint that verifies" in err
    assert "not a relative path inside the folder" in err or "not a regular file" in err


# 2. A demo run writes only into a new or empty folder, or its own earlier output.


def test_a_demo_run_never_writes_over_a_users_data_folder(tmp_path, capsys, no_model_building):
    folder = tmp_path / "proj"
    (folder / "data").mkdir(parents=True)
    (folder / "data" / "train.conll").write_text("Paris\tB-LOC\n")
    before = snapshot(folder)
    code, err = run(["train", "--output_dir", folder], capsys)
    assert code == 2
    assert "--output_dir is not empty and not an earlier demo run's" in err
    assert snapshot(folder) == before


def test_a_demo_run_with_other_options_never_replaces_the_finished_demo_model(
    tmp_path, monkeypatch, capsys, caplog
):
    """`accel-trainer train` again with other flags (or `launch/cpu_debug.sh FLAGS`, which runs
    the demo too) refuses; the same options, spelled out or not, replace it and say so."""
    caplog.set_level(logging.INFO, logger="accel_trainer")
    monkeypatch.chdir(tmp_path)
    folder = tmp_path / "outputs" / "demo-ner"
    assert run(["train", "--max_train_steps", "2"], capsys)[0] == 0
    before = snapshot(folder)
    code, err = run(["train", "--max_train_steps", "3", "--lr_scheduler_type", "cosine"], capsys)
    assert code == 2
    assert err == (
        "accel-trainer: error: --output_dir holds the finished model of a demo run with other "
        "options: got 'outputs/demo-ner' (saved at step 2; this run changes lr_scheduler_type "
        "linear -> cosine, max_train_steps 2 -> 3). Pass --output_dir NEW to keep it and train "
        "into a new folder, or --overwrite_output_dir to replace it.\n"
    )
    assert snapshot(folder) == before
    # The same effective options: tiny-bert's default learning rate, the demo's default folder.
    same = ["train", "--max_train_steps", "2", "--learning_rate", "1e-3", "--output_dir",
            "outputs/demo-ner"]  # fmt: skip
    assert run(same, capsys)[0] == 0
    assert (
        "outputs/demo-ner holds the finished model of a demo run with the same options (saved at "
        "step 2): this run replaces it when it saves its own." in caplog.messages
    )
    code, _ = run(["train", "--max_train_steps", "1", "--overwrite_output_dir"], capsys)
    assert code == 0 and read_json(folder / "all_results.json")["global_step"] == 1
    assert (
        "--overwrite_output_dir: this run replaces the finished model in outputs/demo-ner (saved "
        "at step 2) when it saves its own." in caplog.messages
    )


def test_a_demo_model_whose_options_cannot_be_read_is_never_replaced(
    tmp_path, capsys, no_model_building
):
    folder = tmp_path / "demo"
    folder.mkdir()
    (folder / output_folder.DEMO_MARKER).write_text("")
    (folder / MODEL_MANIFEST).write_text(json.dumps({"step": 7, "files": {}}))
    before = snapshot(folder)
    code, err = run(["train", "--output_dir", folder], capsys)
    assert code == 2 and err == (
        f"accel-trainer: error: --output_dir holds the finished model of a demo run with other "
        f"options: got '{folder}' (saved at step 7; its training_config.json cannot be read, so "
        "its options are unknown). Pass --output_dir NEW to keep it and train into a new folder, "
        "or --overwrite_output_dir to replace it.\n"
    )
    assert snapshot(folder) == before


# 3. predict never replaces its input, the model's files, or a file it did not write.


def predict(model, input_file, output_file, capsys, *extra):
    args = ["predict", "--model_name_or_path", model, "--input_file", input_file,
            "--output_file", output_file, *extra]  # fmt: skip
    return run(args, capsys)


def test_predict_refuses_to_overwrite_its_input_and_the_models_files(
    finished, small_data, tmp_path, capsys
):
    data = tmp_path / "dev.conll"
    shutil.copy(small_data[1], data)
    before, model_before = snapshot(tmp_path / "model"), data.read_bytes()
    code, err = predict(finished, data, data, capsys, "--overwrite_output_file")
    assert code == 2 and "--output_file is the --input_file" in err
    for name in ("model.safetensors", "config.json", "added_tokens.json", "new.conll"):
        code, err = predict(finished, data, finished / name, capsys, "--overwrite_output_file")
        assert code == 2 and "--output_file is inside the model folder" in err
        code, err = predict(finished, data, finished / name, capsys)  # not advised to overwrite
        assert code == 2 and "--output_file is inside the model folder" in err
    assert snapshot(tmp_path / "model") == before and data.read_bytes() == model_before


def test_predict_replaces_only_its_own_earlier_output_unless_told(
    finished, small_data, tmp_path, capsys
):
    gold = tmp_path / "gold.conll"
    shutil.copy(small_data[1], gold)
    code, err = predict(finished, small_data[1], gold, capsys)
    assert code == 2 and "already exists and is not an unchanged output of accel-trainer" in err
    assert gold.read_bytes() == open(small_data[1], "rb").read()
    predicted = tmp_path / "predicted.conll"
    assert predict(finished, small_data[1], predicted, capsys)[0] == 0
    assert predict(finished, small_data[1], predicted, capsys)[0] == 0  # its own: replaced
    with open(predicted, "a") as handle:
        handle.write("edited\tO\n")  # now the user's
    code, err = predict(finished, small_data[1], predicted, capsys)
    assert code == 2 and "not an unchanged output of accel-trainer" in err
    assert predict(finished, small_data[1], gold, capsys, "--overwrite_output_file")[0] == 0
    assert gold.read_bytes() != open(small_data[1], "rb").read()


# 4 and 7. A saved folder is loaded strictly: no re-initialised tensors, its own tokenizer.


def test_a_config_that_does_not_fit_the_weights_is_refused_naming_the_tensors(
    finished, small_data, capsys
):
    (finished / MODEL_MANIFEST).unlink()  # a folder from elsewhere: nothing to verify against
    config = read_json(finished / "config.json")
    labels = [*config["id2label"].values(), "B-EXTRA", "I-EXTRA"]
    config["id2label"] = dict(enumerate(labels))
    config["label2id"] = {label: i for i, label in enumerate(labels)}
    (finished / "config.json").write_text(json.dumps(config))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2
    assert "classifier.weight is [" in err and "in config.json" in err


def test_a_damaged_model_folder_is_refused_by_evaluate_and_predict(
    finished, small_data, tmp_path, capsys
):
    flip_byte(finished / "model.safetensors")
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2
    assert "it is damaged: model.safetensors does not match the sha256" in err
    code, err = predict(finished, small_data[1], tmp_path / "p.conll", capsys)
    assert code == 2 and "it is damaged" in err
    (finished / MODEL_MANIFEST).unlink()
    (finished / "model.safetensors").write_bytes(b"\x00" * 64)
    code, err = predict(finished, small_data[1], tmp_path / "p.conll", capsys)
    assert code == 2 and "--model_name_or_path could not be loaded" in err
    (finished / "config.json").write_text("{not json")
    code, err = predict(finished, small_data[1], tmp_path / "p.conll", capsys)
    assert code == 2 and "has a config.json that cannot be read" in err
    assert not (tmp_path / "p.conll").exists()


def test_a_model_folder_without_its_tokenizer_is_refused(finished, small_data, capsys):
    (finished / MODEL_MANIFEST).unlink()
    for name in ("tokenizer.json", "tokenizer_config.json"):
        (finished / name).unlink()
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "--model_name_or_path has no tokenizer" in err


def test_a_tokenizer_of_another_model_is_refused(finished, small_data, capsys):
    from accel_trainer.models import build_wordpiece_tokenizer

    (finished / MODEL_MANIFEST).unlink()
    other = build_wordpiece_tokenizer([[f"word{i}" for i in range(3000)]])
    other.save_pretrained(str(finished))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "has a tokenizer that does not match its model" in err


# 9. A run killed in its final save can always be resumed; a finished one says so.


def test_a_run_killed_while_writing_its_final_model_resumes_with_auto(
    small_data, tmp_path, capsys, monkeypatch
):
    out = tmp_path / "out"

    def die(*args, **kwargs):
        raise KeyboardInterrupt  # stands for a kill after config.json was written

    from accel_trainer.train import export

    monkeypatch.setattr(export, "write_model_card", die)
    with pytest.raises(KeyboardInterrupt):
        main([str(arg) for arg in train_flags(small_data, out, "--max_train_steps", "3")])
    reset_accelerate()
    monkeypatch.undo()
    assert not (out / "config.json").exists()  # the model never reached the top of the folder
    code, err = run(train_flags(small_data, out, "--max_train_steps", "3"), capsys)
    assert code == 2 and "Pass --resume_from_checkpoint auto to continue it" in err
    code, _ = run(train_flags(small_data, out, "--max_train_steps", "3",
                              "--resume_from_checkpoint", "auto"), capsys)  # fmt: skip
    assert code == 0 and not (out / MODEL_TEMP).exists()
    assert read_json(out / "all_results.json")["global_step"] == 3
    # a requeued job of a finished run: nothing to do, exit 0 (an explicit `latest` is refused)
    code, err = run(train_flags(small_data, out, "--max_train_steps", "3",
                              "--resume_from_checkpoint", "auto"), capsys)  # fmt: skip
    assert code == 0 and f"the run in {out} is complete: its model was saved at step 3" in err
    code, err = run(train_flags(small_data, out, "--max_train_steps", "3",
                              "--resume_from_checkpoint", "latest"), capsys)  # fmt: skip
    assert code == 2 and "already holds the finished model of this run" in err
    # another run's finished model is not "complete" for this one: longer, or other options
    code, err = run(train_flags(small_data, out, "--max_train_steps", "5",
                              "--resume_from_checkpoint", "auto"), capsys)  # fmt: skip
    assert code == 2 and "a run with other training options" in err
    assert "max_train_steps 3 -> 5" in err
    # a damaged final model is saved again from the checkpoint, not called complete
    weights = out / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    code, err = run(train_flags(small_data, out, "--max_train_steps", "3",
                              "--resume_from_checkpoint", "auto"), capsys)  # fmt: skip
    assert code == 0 and "is complete" not in err
    assert final_model_problem(str(out)) is None
    assert read_json(out / "all_results.json")["global_step"] == 3


def test_a_final_model_interrupted_while_moving_into_place_is_finished(
    finished, small_data, capsys
):
    # As left by a kill in the middle of the move: the manifest and some files still in the
    # temporary folder, the top-level manifest gone.
    temporary = finished / MODEL_TEMP
    temporary.mkdir()
    (temporary / ".accel_trainer_temporary").write_text("")
    for name in ("model.safetensors", "tokenizer.json", MODEL_MANIFEST):
        shutil.move(finished / name, temporary / name)
    shutil.copy(temporary / MODEL_MANIFEST, finished / "stale-copy.json")
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "its final save was interrupted" in err
    capsys.readouterr()
    assert (
        main(
            [str(a) for a in train_flags(small_data, finished, "--resume_from_checkpoint", "auto")]
        )
        == 0
    )
    reset_accelerate()
    assert "Finished the interrupted final save of step 8" in capsys.readouterr().out
    assert not temporary.exists()
    code, _ = run(["evaluate", "--model_name_or_path", finished,
                   "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 0


# 10. A torn last line of log_history.jsonl is dropped with a warning.


def test_a_torn_last_log_record_is_dropped_on_resume(small_data, stopped, capsys, caplog):
    with open(stopped / "log_history.jsonl", "a") as handle:
        handle.write('{"step": 4, "lo')
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto"), capsys)
    assert code == 0
    assert "the last one is torn (a crash while appending)" in caplog.text
    records = [json.loads(line) for line in open(stopped / "log_history.jsonl")]
    assert [r["step"] for r in records if "loss" in r] == list(range(1, 9))


# 11. evaluate writes its own results, never the training run's.


def test_evaluate_leaves_all_results_alone_and_records_the_file(finished, small_data, capsys):
    before = (finished / "all_results.json").read_bytes()
    code, _ = run(["evaluate", "--model_name_or_path", finished,
                   "--validation_file", small_data[0]], capsys)  # fmt: skip
    assert code == 0
    assert (finished / "all_results.json").read_bytes() == before
    written = read_json(finished / "eval_results.json")
    assert written["validation_file"] == os.path.abspath(small_data[0])
    with open(small_data[0], "rb") as handle:
        assert written["validation_file_sha256"] == hashlib.sha256(handle.read()).hexdigest()
    assert not any(key.startswith("train_") for key in written)


# Checks that come before any heavy work.


def test_resume_errors_come_before_the_model_is_built(
    small_data, stopped, capsys, no_model_building
):
    before = snapshot(stopped)
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto",
                                    "--learning_rate", "1e-3"), capsys)  # fmt: skip
    assert code == 2 and "--learning_rate 0.003 then, 0.001 now" in err
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto",
                                    "--task", "re"), capsys)  # fmt: skip
    assert code == 2
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", stopped), capsys)
    assert code == 2 and "is a run's output folder, not one of its checkpoints" in err
    assert snapshot(stopped) == before


def test_resume_on_changed_data_is_refused_before_the_model_is_built(
    small_data, stopped, capsys, no_model_building
):
    train_file = small_data[0]  # the same path, other contents (other vocabulary)
    original = open(train_file, "rb").read()
    try:
        with open(train_file, "ab") as handle:
            handle.write(b"\nZanzibar\tB-LOC\nquokkas\tO\n")
        code, err = run(
            train_flags(small_data, stopped, "--resume_from_checkpoint", "auto"), capsys
        )
    finally:
        with open(train_file, "wb") as handle:
            handle.write(original)
    assert code == 2 and "was saved by a run on other data: data files" in err


def test_an_unknown_metric_for_best_model_is_refused_before_training(
    small_data, tmp_path, capsys, no_model_building
):
    code, err = run(train_flags(small_data, tmp_path / "out",
                                "--metric_for_best_model", "eval_f1_MISC"), capsys)  # fmt: skip
    assert code == 2
    assert "--metric_for_best_model is not an eval metric of this task: got 'eval_f1_MISC'" in err
    assert "'eval_f1_LOC'" in err
    assert not (tmp_path / "out").exists()


# Full and read-only disks, on a small tmpfs of their own.


@pytest.fixture
def small_disk(tmp_path):
    """A 64 MB tmpfs mounted for this test (root only)."""
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mount = tmp_path / "disk"
    mount.mkdir()
    done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=64m", "tmpfs", str(mount)],
                          capture_output=True, text=True, timeout=30)  # fmt: skip
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")
    yield mount
    subprocess.run(["umount", "-l", str(mount)], capture_output=True, timeout=30)


def fill(disk, leave_bytes: int = 64 * 1024) -> str:
    """Fill `disk` so that only about `leave_bytes` stay free; returns the filler's path."""
    filler = os.path.join(disk, "filler")
    free = shutil.disk_usage(disk).free
    with open(filler, "ab") as handle:
        handle.truncate(os.path.getsize(filler) + max(0, free - leave_bytes))
    with open(filler, "r+b") as handle:  # tmpfs allocates on write, not on truncate
        block = b"\0" * (1 << 20)
        try:
            while handle.write(block):
                pass
        except OSError:
            pass
    return filler


def filled_before(monkeypatch, module, name: str, disk, leave_bytes: int = 64 * 1024) -> None:
    """Fill the disk right before `module.name` runs."""
    original = getattr(module, name)

    def wrapper(*args, **kwargs):
        fill(disk, leave_bytes)
        return original(*args, **kwargs)

    monkeypatch.setattr(module, name, wrapper)


def test_a_full_disk_during_a_checkpoint_keeps_the_committed_ones(
    small_data, small_disk, capsys, monkeypatch
):
    import accel_trainer.train.checkpointer as trainer_module

    out = small_disk / "out"
    calls = {"n": 0}
    original = trainer_module.save_checkpoint

    def fill_at_second(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            fill(small_disk)
        return original(*args, **kwargs)

    monkeypatch.setattr(trainer_module, "save_checkpoint", fill_at_second)
    code, err = run(train_flags(small_data, out), capsys)
    assert code == 2
    assert "could not write" in err and "no space left on device" in err and " MB" in err
    assert [step for step, _ in committed_checkpoints(str(out))] == [1]
    assert not any(name.startswith(".tmp") for name in os.listdir(out))


def test_a_full_disk_during_the_final_save_keeps_the_previous_model(
    small_data, small_disk, capsys, monkeypatch
):
    import accel_trainer.train.export as trainer_module

    out = small_disk / "out"
    flags = train_flags(small_data, out, "--checkpointing_steps", "no")
    assert run(flags, capsys)[0] == 0
    model = {
        k: v for k, v in snapshot(out).items() if k in read_json(out / MODEL_MANIFEST)["files"]
    }
    filled_before(monkeypatch, trainer_module, "commit_final_model", small_disk)
    code, err = run([*flags, "--overwrite_output_dir", "--seed", "7"], capsys)
    assert code == 2 and "no space left on device" in err and "free there" in err
    after = snapshot(out)
    assert all(after[name] == digest for name, digest in model.items())
    monkeypatch.undo()
    os.unlink(small_disk / "filler")
    code, _ = run(["evaluate", "--model_name_or_path", out, "--validation_file", small_data[1],
                   "--output_dir", small_disk / "eval"], capsys)  # fmt: skip
    assert code == 0


def test_a_fresh_run_whose_final_save_failed_can_be_rerun(
    small_data, small_disk, capsys, monkeypatch
):
    import accel_trainer.train.export as trainer_module

    out = small_disk / "out"
    flags = train_flags(small_data, out, "--checkpointing_steps", "no", "--max_train_steps", "2")
    filled_before(monkeypatch, trainer_module, "commit_final_model", small_disk)
    code, err = run(flags, capsys)
    assert code == 2 and "no space left on device" in err
    monkeypatch.undo()
    os.unlink(small_disk / "filler")
    assert run(flags, capsys)[0] == 0


def test_a_full_disk_during_predict_keeps_the_earlier_output(
    finished, small_data, small_disk, capsys
):
    output = small_disk / "predicted.conll"
    assert predict(finished, small_data[1], output, capsys)[0] == 0
    before = output.read_bytes()
    fill(small_disk, leave_bytes=0)
    code, err = predict(finished, small_data[0], output, capsys)
    assert code == 2
    assert f"could not write {output}: no space left on device. It needs about " in err
    assert "kB; 0 bytes free there" in err
    assert output.read_bytes() == before


def test_a_read_only_output_dir_is_refused_up_front(small_data, small_disk, capsys):
    (small_disk / "out").mkdir()
    subprocess.run(["mount", "-o", "remount,ro", str(small_disk)], check=True, timeout=30)
    code, err = run(train_flags(small_data, small_disk / "out"), capsys)
    assert code == 2 and "--output_dir cannot be written" in err and "read-only" in err


# Found by an adversarial pass over the above.


def resign(folder, name: str) -> None:
    """Write the manifest entry of `name` anew, as if the checkpoint had been saved like that."""
    manifest = read_json(folder / "manifest.json")
    data = (folder / name).read_bytes()
    manifest["files"][name] = {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()}
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_a_fresh_run_never_writes_over_a_users_readme_or_log(small_data, tmp_path, capsys):
    folder = tmp_path / "project"
    folder.mkdir()
    (folder / "README.md").write_text("# my notes\n")
    (folder / "log_history.jsonl").write_text("mine\n")
    before = snapshot(folder)
    code, err = run(train_flags(small_data, folder, "--max_train_steps", "2"), capsys)
    assert code == 2 and "already holds files that a run writes" in err and "README.md" in err
    assert snapshot(folder) == before


def test_a_demo_run_never_replaces_a_real_model_trained_in_a_former_demo_folder(
    small_data, tmp_path, capsys, no_model_building
):
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / output_folder.DEMO_MARKER).write_text("")  # a demo ran here once
    (folder / "config.json").write_text("{}")
    output_folder.mark_output_dir(str(folder), is_demo=False)  # then a real run, over it
    code, err = run(["train", "--output_dir", folder, "--max_train_steps", "1"], capsys)
    assert code == 2 and "--output_dir already holds a model" in err


def test_rotation_keeps_a_checkpoint_that_does_not_verify(small_data, stopped, capsys, caplog):
    flip_byte(stopped / "checkpoint-1" / "optimizer.bin")
    damaged = snapshot(stopped / "checkpoint-1")
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto",
                              "--save_total_limit", "1"), capsys)  # fmt: skip
    assert code == 0
    assert snapshot(stopped / "checkpoint-1") == damaged
    assert "not rotating" in caplog.text and "checkpoint-1" in caplog.text


def test_links_in_the_output_dir_are_never_followed(small_data, stopped, tmp_path, capsys):
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me\n")
    outside = tmp_path / "outside-checkpoint"
    shutil.copytree(stopped / "checkpoint-1", outside)
    before = snapshot(outside)
    os.unlink(stopped / "log_history.jsonl")
    os.symlink(precious, stopped / "log_history.jsonl")
    os.symlink(precious, stopped / ".accel_trainer.lock")
    os.symlink(outside, stopped / "checkpoint-9")
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto",
                              "--save_total_limit", "1"), capsys)  # fmt: skip
    assert code == 0
    assert precious.read_text() == "keep me\n"
    assert snapshot(outside) == before


def test_a_checkpoint_file_its_manifest_does_not_list_makes_it_invalid(small_data, stopped, capsys):
    folder = stopped / "checkpoint-3"
    manifest = read_json(folder / "manifest.json")
    del manifest["files"]["model.safetensors"]  # and swap in older weights nothing vouches for
    (folder / "manifest.json").write_text(json.dumps(manifest))
    shutil.copy(stopped / "checkpoint-1" / "model.safetensors", folder / "model.safetensors")
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", folder), capsys)
    assert code == 2 and "holds model.safetensors, which its manifest.json does not list" in err


DELETE = object()  # the field is taken out of the state


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("seconds", "abc", "'seconds' is not a mapping of seconds"),
        ("log_records", "x", "'log_records' is not a whole number >= 0"),
        (
            "pending_totals",
            [1],
            "'pending_totals' is not a record of loss_sum, loss_count, real_tokens, padded_tokens",
        ),
        ("step", -5, "'step' is not a whole number >= 0"),
        ("best_step", "x", "'best_step' is not a step"),
        ("world_size", 2, "for step 3 on 2 process(es), the manifest for step 3 on 1"),
        ("micro_step_in_epoch", 100000, "micro-batch 100000 of 10"),
        ("epoch_index", DELETE, "it lacks ['epoch_index']"),
        ("world_size", DELETE, "it lacks ['world_size']"),
        ("stray", 1, "it has fields no state has: ['stray']"),
        ("nonfinite_steps", 50, "it has 50 skipped steps in 3 steps"),
        ("last_eval_step", 99, "its last_eval_step 99 is after its step 3"),
    ],
)
def test_an_edited_trainer_state_is_refused(small_data, stopped, capsys, field, value, message):
    folder = stopped / "checkpoint-3"
    state = read_json(folder / "trainer_state.json")
    state[field] = value
    if value is DELETE:
        del state[field]
    (folder / "trainer_state.json").write_text(json.dumps(state))
    resign(folder, "trainer_state.json")
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", folder), capsys)
    assert code == 2 and message in err


def test_a_tokenizer_of_the_same_size_with_other_ids_is_refused(finished, small_data, capsys):
    from transformers import AutoTokenizer

    (finished / MODEL_MANIFEST).unlink()
    tokenizer = AutoTokenizer.from_pretrained(str(finished))
    vocabulary = json.loads(tokenizer.backend_tokenizer.to_str())
    words = vocabulary["model"]["vocab"]
    first, second = sorted(words, key=words.get)[-2:]  # two ordinary words trade ids
    words[first], words[second] = words[second], words[first]
    (finished / "tokenizer.json").write_text(json.dumps(vocabulary))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "whose tokens have other ids than in training" in err


def test_a_config_json_with_a_broken_task_entry_is_one_clear_error(finished, small_data, capsys):
    config = read_json(finished / "config.json")
    edited = {**config, "id2label": {**config["id2label"], "0": "B-XYZ"}}
    (finished / "config.json").write_text(json.dumps(edited))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "it is damaged: config.json has" in err  # before the labels are read
    (finished / MODEL_MANIFEST).unlink()
    assert (
        run(
            ["evaluate", "--model_name_or_path", finished, "--validation_file", small_data[1]],
            capsys,
        )[1].count("not the inverse")
        == 1
    )
    entries = (("x", "has no accel_trainer task"), ({"task": "re"}, "incomplete"),
               ({"task": "ner", "tag_scheme": "xyz"}, "lacks a valid 'tag_scheme'"))  # fmt: skip
    for entry, message in entries:
        config["accel_trainer"] = entry
        (finished / "config.json").write_text(json.dumps(config))
        code, err = run(["evaluate", "--model_name_or_path", finished,
                         "--validation_file", small_data[1]], capsys)  # fmt: skip
        assert code == 2 and message in err


def test_evaluate_checks_its_output_dir_before_evaluating(
    finished, small_data, tmp_path, capsys, no_model_building
):
    a_file = tmp_path / "a_file"
    a_file.write_text("mine")
    for output_dir, message in ((a_file, "is a file, not a folder"),
                                (a_file / "sub", "cannot be written")):  # fmt: skip
        code, err = run(["evaluate", "--model_name_or_path", finished, "--validation_file",
                         small_data[1], "--output_dir", output_dir], capsys)  # fmt: skip
        assert code == 2 and message in err
    assert a_file.read_text() == "mine"


def test_a_folder_where_the_log_should_be_is_one_clear_error(small_data, stopped, capsys):
    os.unlink(stopped / "log_history.jsonl")
    (stopped / "log_history.jsonl").mkdir()
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto"), capsys)
    assert code == 2 and "log_history.jsonl is not a file" in err


def test_resume_accepts_the_same_data_under_another_spelling_of_its_path(
    small_data, stopped, capsys, monkeypatch
):
    monkeypatch.chdir(os.path.dirname(small_data[0]))
    spelled = ("./" + os.path.basename(small_data[0]), os.path.basename(small_data[1]))
    code, err = run(train_flags(spelled, stopped, "--resume_from_checkpoint", "auto"), capsys)
    assert code == 0, err
    assert read_json(stopped / "all_results.json")["global_step"] == 8


# Found by a second adversarial pass.


def test_a_link_in_place_of_the_temporary_model_folder_is_not_followed(
    small_data, stopped, tmp_path, capsys
):
    other = tmp_path / "other-model"
    other.mkdir()
    (other / "config.json").write_text("{}")
    (other / MODEL_MANIFEST).write_text(json.dumps({"step": 8, "files": {}, "replaces": []}))
    before = snapshot(other)
    os.symlink(other, stopped / MODEL_TEMP)
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto"), capsys)
    assert code == 0 and snapshot(other) == before


def test_a_linked_marker_in_a_checkpoint_is_never_written_through(
    small_data, stopped, tmp_path, capsys
):
    victim = tmp_path / "victim"
    victim.write_text("DATA")
    os.symlink(victim, stopped / "checkpoint-1" / ".accel_trainer_temporary")
    code, _ = run(train_flags(small_data, stopped, "--resume_from_checkpoint", "auto",
                              "--save_total_limit", "1"), capsys)  # fmt: skip
    assert code == 0 and victim.read_text() == "DATA"


def test_a_planted_partial_file_never_redirects_a_write(finished, small_data, tmp_path, capsys):
    data = tmp_path / "in.conll"
    shutil.copy(small_data[1], data)
    before = data.read_bytes()
    os.symlink(data, tmp_path / ".out.conll.partial")
    os.link(finished / "model.safetensors", tmp_path / ".out.conll.partial2")
    code, _ = predict(finished, data, tmp_path / "out.conll", capsys)
    assert code == 0 and data.read_bytes() == before
    assert not os.path.islink(tmp_path / "out.conll")
    assert run(["evaluate", "--model_name_or_path", finished, "--validation_file", data,
                "--output_dir", tmp_path / "eval"], capsys)[0] == 0  # fmt: skip


def test_a_model_finished_while_waiting_for_the_lock_is_not_replaced(
    small_data, finished, tmp_path, capsys, monkeypatch
):
    from accel_trainer.storage import commit, lock

    out = tmp_path / "race"
    original = lock.lock_output_dir

    def another_run_finishes_first(path):
        shutil.copytree(finished, path, dirs_exist_ok=True, ignore=shutil.ignore_patterns("check*"))
        return original(path)

    monkeypatch.setattr(lock, "lock_output_dir", another_run_finishes_first)
    code, err = run(train_flags(small_data, out, "--max_train_steps", "2"), capsys)
    assert code == 2 and "--output_dir already holds a model" in err
    assert commit.final_model_problem(str(out)) is None  # the other run's, whole


@pytest.mark.parametrize("extra", ["sub/manifest.json", "empty/", "linked/"])
def test_anything_a_checkpoint_manifest_does_not_list_makes_it_invalid(
    small_data, stopped, capsys, extra
):
    folder = stopped / "checkpoint-3"
    if extra == "linked/":
        os.symlink("/etc", folder / "linked")
    elif extra.endswith("/"):
        (folder / extra).mkdir()
    else:
        (folder / "sub").mkdir()
        shutil.copy(folder / "manifest.json", folder / extra)
    code, err = run(train_flags(small_data, stopped, "--resume_from_checkpoint", folder), capsys)
    assert code == 2 and "which its manifest.json does not list" in err


def test_a_config_json_that_drops_trained_weights_is_refused(finished, small_data, capsys):
    (finished / MODEL_MANIFEST).unlink()
    config = read_json(finished / "config.json")
    config["num_hidden_layers"] = 1
    (finished / "config.json").write_text(json.dumps(config))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "has trained weights its config.json has no place for" in err
    config["num_hidden_layers"] = 2
    config["id2label"] = {str(int(i) + 1): label for i, label in config["id2label"].items()}
    (finished / "config.json").write_text(json.dumps(config))
    code, err = run(["evaluate", "--model_name_or_path", finished,
                     "--validation_file", small_data[1]], capsys)  # fmt: skip
    assert code == 2 and "id2label ids are [1," in err


def test_evaluate_refuses_an_output_dir_that_cannot_exist_before_evaluating(
    finished, small_data, capsys, no_model_building
):
    code, err = run(["evaluate", "--model_name_or_path", finished, "--validation_file",
                     small_data[1], "--output_dir", "a" * 300], capsys)  # fmt: skip
    assert code == 2 and "has a name longer than 255 bytes" in err


def test_a_demo_rerun_never_writes_through_links_in_its_data_folder(tmp_path, capsys):
    folder, elsewhere = tmp_path / "demo", tmp_path / "elsewhere"
    elsewhere.mkdir()
    (elsewhere / "train.conll").write_text("mine\tO\n")
    folder.mkdir()
    (folder / output_folder.DEMO_MARKER).write_text("")
    os.symlink(elsewhere, folder / "data")
    code, _ = run(["train", "--output_dir", folder, "--max_train_steps", "1"], capsys)
    assert code == 0
    assert (elsewhere / "train.conll").read_text() == "mine\tO\n"
    assert (folder / "data").is_dir() and not (folder / "data").is_symlink()
