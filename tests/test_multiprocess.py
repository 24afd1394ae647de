"""Two real processes on loopback (gloo), launched the way users launch them."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest
import torch
from safetensors.torch import load_file

from accel_trainer import commands
from accel_trainer.cli import main
from accel_trainer.errors import EXIT_PREEMPTED
from accel_trainer.tasks.ner.formats import read_conll
from tests.conftest import (
    REPO_ROOT,
    computed_records,
    evaluate_saved,
    free_port,
    read_json,
    read_jsonl,
    start,
    tail,
    trace_consumed_rows,
    wait_all,
    write_jsonl,
)

pytestmark = pytest.mark.multiprocess
LAUNCH_TIMEOUT_S = 300


HOOKED_TRAIN = os.path.join(REPO_ROOT, "tests", "hooked_train.py")


def launch_command(args, command_name="train", hooked=False, num_processes=2, config=None):
    """`accelerate launch` of CPU processes; hooked: through tests/hooked_train.py."""
    program = [HOOKED_TRAIN] if hooked else ["-m", "accel_trainer"]
    return [
        sys.executable,
        "-m",
        "accelerate.commands.launch",
        "--config_file",
        config or os.path.join(REPO_ROOT, "accelerate_configs", "cpu_2proc.yaml"),
        "--num_processes",
        str(num_processes),
        "--main_process_port",
        str(free_port()),
        *program,
        command_name,
        *args,
    ]


def accelerate_launch(
    args, command_name="train", hooked=False, num_processes=2, config=None, **env_values
):
    command = launch_command(args, command_name, hooked, num_processes, config)
    env = {**os.environ, "OMP_NUM_THREADS": "1", **env_values}
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
    double = read_json(tmp_path / "double" / "eval_results.json")
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

    # Raw text: two processes write the same entities, offsets and scores as one.
    notes = tmp_path / "notes.txt"
    sentences = [" ".join(sentence["tokens"]) for sentence in read_conll(dev, "dev", "bio")]
    notes.write_text("\n".join(f"\t{s}  {s.lower()}" for s in sentences) + "\n")
    text_args = [*predict_args[:2], "--input_file", str(notes), *predict_args[4:]]
    assert main(["predict", *text_args, "--output_file", str(tmp_path / "one.jsonl")]) == 0
    done = accelerate_launch(
        [*text_args, "--output_file", str(tmp_path / "two.jsonl")], command_name="predict"
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    one = (tmp_path / "one.jsonl").read_text()
    assert (tmp_path / "two.jsonl").read_text() == one
    records = [json.loads(line) for line in one.splitlines()]
    assert len(records) == 37 and sum(len(r["entities"]) for r in records) > 0

    # JSON lines of tokens with an empty record among them: one output line per input record.
    tokens_file = tmp_path / "tokens.jsonl"
    inputs = [{"tokens": sentence["tokens"], "id": n} for n, sentence in
              enumerate(read_conll(dev, "dev", "bio")[:5])]  # fmt: skip
    inputs.insert(2, {"tokens": [], "id": "empty"})
    write_jsonl(tokens_file, inputs)
    tokens_args = [*predict_args[:2], "--input_file", str(tokens_file), *predict_args[4:]]
    done = accelerate_launch(
        [*tokens_args, "--output_file", str(tmp_path / "tokens.out")], command_name="predict"
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    written = [json.loads(line) for line in (tmp_path / "tokens.out").read_text().splitlines()]
    assert [r["id"] for r in written] == [r["id"] for r in inputs]
    assert written[2]["ner_tags"] == [] and len(written[3]["ner_tags"]) == len(inputs[3]["tokens"])


# 48 sentences, 2 processes x batch 2 = 12 micro-batches per process and epoch; windows of 2:
# 6 optimizer steps per epoch, 18 in all, a checkpoint after each.
RESUME_ARGS = [
    "--num_train_epochs",
    "3",
    "--per_device_train_batch_size",
    "2",
    "--gradient_accumulation_steps",
    "2",
    "--learning_rate",
    "3e-3",
    "--checkpointing_steps",
    "1",
    "--logging_steps",
    "1",
]
TOTAL_STEPS = 18


def resume_args(small_data, out):
    train, dev = small_data
    return ["--train_file", train, "--validation_file", dev, "--output_dir", str(out), *RESUME_ARGS]


def traces(folder) -> dict[int, list[dict]]:
    """What each process trained on, by process index, from hooked_train.py's trace files."""
    return {rank: read_jsonl(folder / f"rank-{rank}.jsonl") for rank in (0, 1)}


@pytest.fixture(scope="module")
def reference(small_data, tmp_path_factory):
    """An uninterrupted two-process run: its output folder and what each process trained on."""
    folder = tmp_path_factory.mktemp("reference")
    (folder / "trace").mkdir()
    done = accelerate_launch(
        resume_args(small_data, folder / "out"), hooked=True, TRACE_ROWS_DIR=str(folder / "trace")
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return folder / "out", traces(folder / "trace")


def optimizer_tensors(checkpoint) -> list[torch.Tensor]:
    state = torch.load(checkpoint / "optimizer.bin", weights_only=True)["state"]
    return [t for values in state.values() for t in values.values() if torch.is_tensor(t)]


def assert_same_run(reference, out, consumed: dict[int, list[dict]]):
    """Bit-identical weights, optimizer state, learning rates, losses and evaluations, and the
    same micro-batches, in order, on each process."""
    expected_out, expected_consumed = reference
    expected, got = (
        load_file(expected_out / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    assert expected.keys() == got.keys()
    assert all(torch.equal(expected[k], got[k]) for k in expected)
    last = f"checkpoint-{TOTAL_STEPS}"
    pairs = zip(optimizer_tensors(expected_out / last), optimizer_tensors(out / last), strict=True)
    assert all(torch.equal(a, b) for a, b in pairs)
    scheduler = "scheduler.bin"
    assert (expected_out / last / scheduler).read_bytes() == (out / last / scheduler).read_bytes()
    logged = computed_records(read_jsonl(out / "log_history.jsonl"))
    assert logged == computed_records(read_jsonl(expected_out / "log_history.jsonl"))
    assert consumed == expected_consumed


def cut_after(reference_out, out, step):
    """What a run killed right after committing checkpoint-<step> leaves behind."""
    shutil.copytree(reference_out, out)
    for path in out.iterdir():
        number = path.name.removeprefix("checkpoint-")
        if (number.isdigit() and int(number) > step) or path.suffix in (".json", ".safetensors"):
            shutil.rmtree(path) if path.is_dir() else path.unlink()


def test_two_process_resume_at_an_epoch_end_reproduces_the_run(small_data, reference, tmp_path):
    """Resume from checkpoint-6, taken before epoch 0's evaluation, with `auto`."""
    out, trace = tmp_path / "out", tmp_path / "trace"
    cut_after(reference[0], out, 6)
    trace.mkdir()
    done = accelerate_launch(
        [*resume_args(small_data, out), "--resume_from_checkpoint", "auto"],
        hooked=True,
        TRACE_ROWS_DIR=str(trace),
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    assert "resumed from" in done.stdout + done.stderr
    before = {rank: [e for e in entries if e["step"] < 6] for rank, entries in reference[1].items()}
    resumed = traces(trace)
    assert_same_run(reference, out, {rank: before[rank] + resumed[rank] for rank in (0, 1)})


def logged_step(out) -> int:
    """The highest optimizer step in log_history.jsonl so far."""
    path = out / "log_history.jsonl"
    if not path.exists():
        return 0
    steps = [json.loads(line)["step"] for line in path.read_text().splitlines() if line.strip()]
    return max(steps, default=0)


def wait_for_step(out, step, processes, timeout_s=120):
    deadline = time.monotonic() + timeout_s
    while logged_step(out) < step:
        assert time.monotonic() < deadline, f"no step {step} logged in {timeout_s} s"
        assert all(p.poll() is None for p in processes), "the run ended before the signal"
        time.sleep(0.05)


def start_ranks(args, env_values, log_folder, extra_args=((), ())):
    """Two processes of one run, started the way torchrun starts them (so that each one's exit
    code can be seen); extra_args[rank] go to that process only."""
    port = str(free_port())
    processes = []
    for rank in (0, 1):
        env = {
            **os.environ,
            **env_values,
            "OMP_NUM_THREADS": "1",
            "ACCELERATE_USE_CPU": "1",
            "MASTER_ADDR": "127.0.0.1",
            "MASTER_PORT": port,
            "WORLD_SIZE": "2",
            "LOCAL_WORLD_SIZE": "2",
            "RANK": str(rank),
            "LOCAL_RANK": str(rank),
        }
        command = [sys.executable, HOOKED_TRAIN, "train", *args, *extra_args[rank]]
        processes.append(start(command, env, REPO_ROOT, log_folder / f"rank-{rank}.log"))
    return processes


def newest_checkpoint(out):
    return max((p for p in out.glob("checkpoint-*")), key=lambda p: int(p.name.split("-")[1]))


def test_sigterm_to_one_process_stops_both_at_one_step_and_resume_is_bit_exact(
    small_data, reference, tmp_path
):
    out, logs = tmp_path / "out", tmp_path / "logs"
    logs.mkdir()
    consumed = {0: [], 1: []}
    slow = {"STEP_DELAY_S": "0.1"}

    # 1. SIGTERM to process 1 only: both agree to stop, commit one checkpoint, exit 75.
    (tmp_path / "trace1").mkdir()
    ranks = start_ranks(
        resume_args(small_data, out), {**slow, "TRACE_ROWS_DIR": str(tmp_path / "trace1")}, logs
    )
    try:
        wait_for_step(out, 3, ranks)
        ranks[1].send_signal(signal.SIGTERM)
    finally:
        codes = wait_all(ranks, timeout_s=120)
    assert codes == [EXIT_PREEMPTED, EXIT_PREEMPTED], tail(logs / "rank-0.log")
    first_stop = newest_checkpoint(out)
    step = read_json(first_stop / "trainer_state.json")["step"]
    assert 3 <= step < TOTAL_STEPS
    manifest = read_json(first_stop / "manifest.json")
    assert manifest["world_size"] == 2 and manifest["step"] == step
    assert {"random_states_0.pkl", "random_states_1.pkl"} <= manifest["files"].keys()
    assert "stopped by a signal at step" in tail(logs / "rank-0.log")
    assert not (out / "model.safetensors").exists()
    for rank, entries in traces(tmp_path / "trace1").items():
        assert entries[-1]["step"] == step - 1  # each trained up to the checkpoint, no further
        consumed[rank] += entries

    # 2. Resume under accelerate launch; SIGTERM to the launcher, which forwards it to both.
    (tmp_path / "trace2").mkdir()
    env = {**os.environ, **slow, "OMP_NUM_THREADS": "1", "TRACE_ROWS_DIR": str(tmp_path / "trace2")}
    command = launch_command(
        [*resume_args(small_data, out), "--resume_from_checkpoint", "auto"], hooked=True
    )
    launcher = start(command, env, REPO_ROOT, logs / "launcher.log")
    try:
        wait_for_step(out, step + 3, [launcher])
        launcher.send_signal(signal.SIGTERM)
    finally:
        [code] = wait_all([launcher], timeout_s=120)
    assert code not in (0, None), tail(logs / "launcher.log")
    second_step = read_json(newest_checkpoint(out) / "trainer_state.json")["step"]
    assert step + 3 <= second_step < TOTAL_STEPS, tail(logs / "launcher.log")
    for rank, entries in traces(tmp_path / "trace2").items():
        consumed[rank] += entries

    # 3. Resume to the end: the same run as the uninterrupted one, bit for bit.
    (tmp_path / "trace3").mkdir()
    done = accelerate_launch(
        [*resume_args(small_data, out), "--resume_from_checkpoint", "auto"],
        hooked=True,
        TRACE_ROWS_DIR=str(tmp_path / "trace3"),
    )
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    for rank, entries in traces(tmp_path / "trace3").items():
        consumed[rank] += entries
    assert_same_run(reference, out, consumed)


def test_a_nan_loss_on_one_process_skips_the_step_on_both(small_data, tmp_path):
    out = tmp_path / "out"
    args = [
        "--train_file",
        small_data[0],
        "--output_dir",
        str(out),
        *RESUME_ARGS,
        "--max_train_steps",
        "5",
        "--num_warmup_steps",
        "3",
    ]
    # Process 1's 5th forward pass is the first micro-batch of optimizer step 3.
    done = accelerate_launch(args, hooked=True, NAN_RANK="1", NAN_AT="5")
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    before, after, later = (out / f"checkpoint-{step}" for step in (2, 3, 4))
    for name in ("model.safetensors", "optimizer.bin", "scheduler.bin"):
        assert (before / name).read_bytes() == (after / name).read_bytes(), name
    assert (after / "model.safetensors").read_bytes() != (later / "model.safetensors").read_bytes()
    assert read_json(after / "trainer_state.json")["nonfinite_steps"] == 1
    losses = {r["step"]: r["loss"] for r in read_jsonl(out / "log_history.jsonl") if "loss" in r}
    assert losses[3] != losses[3] and losses[4] == losses[4]  # NaN logged, not hidden
    assert read_json(out / "all_results.json")["nonfinite_steps"] == 1
    assert "step 3 skipped: non-finite gradient norm" in done.stdout + done.stderr


def test_two_process_checkpoint_resumes_on_one_process_with_the_same_global_batch(
    small_data, reference, tmp_path, monkeypatch, capsys, caplog
):
    out = tmp_path / "out"
    cut_after(reference[0], out, 9)  # mid-epoch 1
    args = ["train", *resume_args(small_data, out), "--resume_from_checkpoint", "latest"]
    assert main(args) == 2
    assert "add --allow_topology_change" in capsys.readouterr().err
    consumed = []
    build = commands.build_trainer

    def traced(config):
        trainer = build(config)
        trace_consumed_rows(trainer, lambda *entry: consumed.append(entry))
        return trainer

    monkeypatch.setattr(commands, "build_trainer", traced)
    # 1 process x batch 2 x accumulation 4 = 2 x 2 x 2: the same 8 examples per step.
    assert main([*args, "--gradient_accumulation_steps", "4", "--allow_topology_change"]) == 0
    assert "no longer bit-exact" in caplog.text
    assert read_json(out / "all_results.json")["global_step"] == TOTAL_STEPS
    expected = {}
    for entries in reference[1].values():
        for entry in entries:
            expected.setdefault(entry["step"], set()).update(entry["row_ids"])
    got = {}
    for _, step, row_ids in consumed:
        got.setdefault(step, set()).update(row_ids)
    assert got == {step: rows for step, rows in expected.items() if step >= 9}
