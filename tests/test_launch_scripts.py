"""The scripts in launch/: syntax, the commands they build, and real CPU runs through them.

The command-building tests put stand-ins for `accelerate`, `nvidia-smi`, `srun` and `scontrol`
first on PATH, so the GPU and SLURM scripts are checked on any machine; the stand-in `accelerate`
records its arguments instead of training. The last two tests train for real on the CPU.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import stat
import subprocess
import sys
import time

import pytest
import torch

from tests.conftest import REPO_ROOT, free_port, read_json, start, tail, wait_all

LAUNCH_DIR = os.path.join(REPO_ROOT, "launch")
LAUNCH_FILES = sorted(os.listdir(LAUNCH_DIR))
CONFIGS = os.path.join(REPO_ROOT, "accelerate_configs")
EXPECTED_FILES = {"cpu_debug.sh", "single_gpu.sh", "multi_gpu.sh", "multi_node.sh", "slurm.sbatch"}
TRAIN_TIMEOUT_S = 240
TWO_NODE_TIMEOUT_S = 300
# Variables the scripts read; cleared so that the caller's environment cannot change the result.
SCRIPT_VARIABLES = (
    "NUM_PROCESSES", "NUM_GPUS", "MACHINE_RANK", "MAIN_PROCESS_IP", "MAIN_PROCESS_PORT",
    "NUM_MACHINES", "GPUS_PER_NODE", "ACCELERATE_USE_CPU", "REPO_ROOT", "OMP_NUM_THREADS",
    "SLURM_JOB_NODELIST", "SLURM_NNODES", "SLURM_JOB_ID", "SLURM_GPUS_ON_NODE", "SLURM_NODEID",
    "SLURM_SUBMIT_DIR",
)  # fmt: skip


def script(name: str) -> str:
    return os.path.join(LAUNCH_DIR, name)


def clean_env(**values: str) -> dict[str, str]:
    """This environment without the scripts' variables, this venv's tools first on PATH."""
    env = {key: value for key, value in os.environ.items() if key not in SCRIPT_VARIABLES}
    env["PATH"] = os.path.dirname(sys.executable) + os.pathsep + env.get("PATH", "")
    env.update(values)
    return env


# ---------------------------------------------------------------------------------------------
# Static checks


def test_launch_folder_holds_every_script():
    assert EXPECTED_FILES <= set(LAUNCH_FILES)


@pytest.mark.parametrize("name", LAUNCH_FILES)
def test_script_is_valid_bash_executable_and_documented(name):
    path = script(name)
    checked = subprocess.run(["bash", "-n", path], capture_output=True, text=True, timeout=30)
    assert checked.returncode == 0, checked.stderr
    assert os.stat(path).st_mode & stat.S_IXUSR, f"{name} is not executable (chmod +x)"
    with open(path, encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    assert lines[0] == "#!/usr/bin/env bash"
    header = []
    for line in lines[1:]:
        if not line.startswith("#"):
            break
        header.append(line)
    assert any("Usage" in line for line in header), f"{name}: no usage example in its header"
    assert "set -euo pipefail" in lines
    assert any('"$@"' in line for line in lines), f"{name} does not pass its arguments on"


def test_sbatch_file_asks_for_two_nodes_of_eight_gpus_and_calls_srun():
    with open(script("slurm.sbatch"), encoding="utf-8") as handle:
        lines = handle.read().splitlines()
    directives = [line for line in lines if line.startswith("#SBATCH")]
    expected_lines = (
        "--nodes=2",
        "--ntasks-per-node=1",
        "--gpus-per-node=8",
        "--signal=B:USR1@180",  # warn the batch shell 180 s before the time limit
        "--requeue",
        "--open-mode=append",  # a requeued job adds to the same log
    )
    for expected in expected_lines:
        assert f"#SBATCH {expected}" in directives
    for option in ("--cpus-per-task=", "--time=", "--output="):
        assert any(line.startswith(f"#SBATCH {option}") for line in directives), option
    # sbatch ignores #SBATCH lines after the first command.
    first_command = next(i for i, line in enumerate(lines[1:], 1) if line and line[0] != "#")
    assert all(lines.index(line) < first_command for line in directives)
    assert any(line.startswith("srun ") for line in lines)


# ---------------------------------------------------------------------------------------------
# The commands the scripts build, with stand-in tools

FAKE_ACCELERATE = """\
import json, os, signal, sys
keys = ("MACHINE_RANK", "OMP_NUM_THREADS", "ACCELERATE_USE_CPU", "PYTHONPATH",
        "TORCH_ELASTIC_SHUTDOWN_TIMEOUT")
record = {"argv": sys.argv[1:], "env": {key: os.environ.get(key) for key in keys}}

def log(record):
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps(record) + "\\n")

if os.environ.get("FAKE_TRAIN_UNTIL_SIGTERM"):  # train until SIGTERM, then stop like torchrun
    signal.signal(signal.SIGTERM, lambda *_: (log({"stopped": os.environ["MACHINE_RANK"]}),
                                              sys.exit(1)))
    log(record)
    while True:
        signal.pause()
log(record)
"""
FAKE_NVIDIA_SMI = """\
import os, sys
count = os.environ.get("FAKE_GPU_COUNT")
if count is None:
    sys.exit("NVIDIA-SMI has failed because it couldn't communicate with the NVIDIA driver.")
for index in range(int(count)):
    print(f"GPU {index}: NVIDIA H100 80GB HBM3 (UUID: GPU-{index:08d})")
"""
FAKE_SRUN = """\
import json, os, subprocess, sys
args = sys.argv[1:]
options = []
while args and args[0].startswith("-"):
    options.append(args.pop(0))
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as handle:
    handle.write(json.dumps({"srun": options}) + "\\n")
tasks = [
    subprocess.Popen(args, env={**os.environ, "SLURM_NODEID": str(node)})
    for node in range(int(os.environ["SLURM_NNODES"]))
]
with open(os.environ["FAKE_LOG"] + ".pids", "w", encoding="utf-8") as handle:
    handle.write(" ".join(str(task.pid) for task in tasks))
sys.exit(max(task.wait() for task in tasks))
"""
FAKE_SCANCEL = """\
import json, os, signal, sys
with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as handle:
    handle.write(json.dumps({"scancel": sys.argv[1:]}) + "\\n")
assert sys.argv[1] == "--signal=TERM", sys.argv
with open(os.environ["FAKE_LOG"] + ".pids", encoding="utf-8") as handle:
    for pid in handle.read().split():
        os.kill(int(pid), signal.SIGTERM)
"""
FAKE_SCONTROL = """\
import json, os, sys
if sys.argv[1] == "requeue":
    with open(os.environ["FAKE_LOG"], "a", encoding="utf-8") as handle:
        handle.write(json.dumps({"requeue": sys.argv[2:]}) + "\\n")
    sys.exit(0)
assert sys.argv[1:3] == ["show", "hostnames"], sys.argv
print("gpu-node-07")
print("gpu-node-08")
# A long node list: a reader that stops after the first line must not fail the job.
for index in range(int(os.environ.get("FAKE_MORE_HOSTS", "0"))):
    print(f"gpu-node-{index + 100}")
"""


@pytest.fixture
def fake_tools(tmp_path):
    """Stand-ins for accelerate, nvidia-smi, srun, scontrol and scancel, and their log."""
    folder = tmp_path / "fake-bin"
    folder.mkdir()
    for name, body in (
        ("accelerate", FAKE_ACCELERATE),
        ("nvidia-smi", FAKE_NVIDIA_SMI),
        ("srun", FAKE_SRUN),
        ("scontrol", FAKE_SCONTROL),
        ("scancel", FAKE_SCANCEL),
    ):
        path = folder / name
        path.write_text(f"#!{sys.executable}\n{body}", encoding="utf-8")
        path.chmod(0o755)
    return folder, tmp_path / "fake.jsonl"


def run_with_fakes(fake_tools, command, cwd, **values):
    """Run a launch script with the stand-ins; returns (completed process, logged records)."""
    folder, log = fake_tools
    env = clean_env(FAKE_LOG=str(log), **values)
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, cwd=cwd, env=env)
    records = []
    if log.exists():
        records = [json.loads(line) for line in log.read_text(encoding="utf-8").splitlines()]
    return done, records


def launched(records) -> list[dict]:
    """The `accelerate` calls: options as a dict, the trainer's arguments and the environment."""
    calls = []
    for record in records:
        if "argv" not in record:
            continue
        argv = record["argv"]
        assert argv[0] == "launch", argv
        split = argv.index("-m")
        assert argv[split : split + 3] == ["-m", "accel_trainer", "train"], argv
        flags = [flag for flag in argv[1:split] if flag != "--quiet"]
        assert len(flags) % 2 == 0, flags
        options = dict(zip(flags[::2], flags[1::2], strict=True))
        quiet = "--quiet" in argv[1:split]
        calls.append(
            {"options": options, "quiet": quiet, "trainer": argv[split + 3 :], "env": record["env"]}
        )
    return calls


# An argument with a space and one with a glob character must arrive unchanged.
TRAINER_ARGS = ["--output_dir", "out dir/run *1", "--max_train_steps", "5"]


@pytest.mark.parametrize(
    ("values", "config", "extra"),
    [
        ({}, "cpu.yaml", {}),
        ({"NUM_PROCESSES": "2"}, "cpu_2proc.yaml", {"--num_processes": "2"}),
        (
            {"NUM_PROCESSES": "2", "MAIN_PROCESS_PORT": "29777"},
            "cpu_2proc.yaml",
            {"--num_processes": "2", "--main_process_port": "29777"},
        ),
    ],
)
def test_cpu_debug_command(fake_tools, tmp_path, values, config, extra):
    done, records = run_with_fakes(
        fake_tools, ["bash", script("cpu_debug.sh"), *TRAINER_ARGS], tmp_path, **values
    )
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["options"].pop("--config_file") == os.path.join(CONFIGS, config)
    if config == "cpu_2proc.yaml":
        port = call["options"].pop("--main_process_port")
        assert port == extra.pop("--main_process_port", port)
        assert 0 < int(port) < 65536
        assert call["env"]["OMP_NUM_THREADS"] == "1"
        assert call["env"]["ACCELERATE_USE_CPU"] == "1"
    assert call["options"] == extra
    # One process: the trainer's one-line error without the launcher's traceback.
    assert call["quiet"] == (config == "cpu.yaml")
    assert call["trainer"] == TRAINER_ARGS
    assert call["env"]["PYTHONPATH"].split(os.pathsep)[0] == REPO_ROOT


def test_cpu_debug_two_processes_keeps_a_given_thread_count(fake_tools, tmp_path):
    done, records = run_with_fakes(
        fake_tools,
        [script("cpu_debug.sh")],
        tmp_path,
        NUM_PROCESSES="2",
        OMP_NUM_THREADS="3",
    )
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["env"]["OMP_NUM_THREADS"] == "3"
    assert call["trainer"] == []


def test_single_gpu_command(fake_tools, tmp_path):
    done, records = run_with_fakes(fake_tools, [script("single_gpu.sh"), *TRAINER_ARGS], tmp_path)
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["options"] == {"--config_file": os.path.join(CONFIGS, "single_gpu.yaml")}
    assert call["trainer"] == TRAINER_ARGS


@pytest.mark.parametrize(
    ("values", "num_processes"),
    [({"FAKE_GPU_COUNT": "4"}, "4"), ({"FAKE_GPU_COUNT": "4", "NUM_GPUS": "2"}, "2")],
)
def test_multi_gpu_command_counts_the_gpus(fake_tools, tmp_path, values, num_processes):
    done, records = run_with_fakes(
        fake_tools, [script("multi_gpu.sh"), *TRAINER_ARGS], tmp_path, **values
    )
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["options"] == {
        "--config_file": os.path.join(CONFIGS, "multi_gpu.yaml"),
        "--num_processes": num_processes,
    }
    assert call["trainer"] == TRAINER_ARGS


def test_multi_gpu_without_nvidia_smi_asks_for_num_gpus(fake_tools, tmp_path):
    done, records = run_with_fakes(fake_tools, [script("multi_gpu.sh")], tmp_path)
    assert done.returncode != 0
    assert "NUM_GPUS" in done.stderr
    assert launched(records) == []


NODE_0 = {"MACHINE_RANK": "0", "MAIN_PROCESS_IP": "10.1.2.3"}


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # 2 machines (default) x 8 GPUs from nvidia-smi, default port
        ({"FAKE_GPU_COUNT": "8"}, {"--num_machines": "2", "--num_processes": "16"}),
        (
            {"FAKE_GPU_COUNT": "8", "NUM_MACHINES": "3", "GPUS_PER_NODE": "4"},
            {"--num_machines": "3", "--num_processes": "12"},
        ),
        # CPU testing: one process per node, nvidia-smi (failing here) not asked
        ({"ACCELERATE_USE_CPU": "1"}, {"--num_machines": "2", "--num_processes": "2"}),
    ],
)
def test_multi_node_command(fake_tools, tmp_path, values, expected):
    done, records = run_with_fakes(
        fake_tools,
        [script("multi_node.sh"), *TRAINER_ARGS],
        tmp_path,
        MACHINE_RANK="1",
        MAIN_PROCESS_IP="10.1.2.3",
        MAIN_PROCESS_PORT="29612",
        **values,
    )
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["options"] == {
        "--config_file": os.path.join(CONFIGS, "multi_node.yaml"),
        "--machine_rank": "1",
        "--main_process_ip": "10.1.2.3",
        "--main_process_port": "29612",
        **expected,
    }
    assert call["trainer"] == TRAINER_ARGS


def test_multi_node_port_defaults_to_29500(fake_tools, tmp_path):
    done, records = run_with_fakes(
        fake_tools, [script("multi_node.sh")], tmp_path, **NODE_0, FAKE_GPU_COUNT="2"
    )
    assert done.returncode == 0, done.stderr
    (call,) = launched(records)
    assert call["options"]["--main_process_port"] == "29500"


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"MAIN_PROCESS_IP": "10.1.2.3"}, "MACHINE_RANK"),
        ({"MACHINE_RANK": "0"}, "MAIN_PROCESS_IP"),
        ({**NODE_0, "MACHINE_RANK": "2"}, "MACHINE_RANK"),  # only 2 machines: ranks 0 and 1
        ({**NODE_0, "MACHINE_RANK": "one"}, "MACHINE_RANK"),
        ({**NODE_0, "GPUS_PER_NODE": "0"}, "GPUS_PER_NODE"),
        ({**NODE_0, "MAIN_PROCESS_PORT": "70000"}, "MAIN_PROCESS_PORT"),
        (NODE_0, "GPUS_PER_NODE"),  # nvidia-smi fails and no ACCELERATE_USE_CPU
    ],
)
def test_multi_node_rejects_bad_settings_before_launching(fake_tools, tmp_path, values, named):
    done, records = run_with_fakes(
        fake_tools, [script("multi_node.sh"), "--max_train_steps", "3"], tmp_path, **values
    )
    assert done.returncode != 0
    assert named in done.stderr
    assert done.stderr.startswith("multi_node.sh: ")
    assert launched(records) == []


def test_multi_node_reports_every_problem_at_once(fake_tools, tmp_path):
    done, records = run_with_fakes(
        fake_tools, [script("multi_node.sh")], tmp_path, NUM_MACHINES="two"
    )
    assert done.returncode == 2
    named = [line.split()[1] for line in done.stderr.splitlines()]
    assert named == ["MACHINE_RANK", "MAIN_PROCESS_IP", "NUM_MACHINES", "GPUS_PER_NODE"]
    assert launched(records) == []


def test_multi_node_without_machine_rank_fails_with_the_real_tools(tmp_path):
    done = subprocess.run(
        [script("multi_node.sh"), "--max_train_steps", "3"],
        capture_output=True,
        text=True,
        timeout=60,
        cwd=tmp_path,
        env=clean_env(MAIN_PROCESS_IP="127.0.0.1", ACCELERATE_USE_CPU="1"),
    )
    assert done.returncode != 0
    assert "MACHINE_RANK is not set" in done.stderr
    assert not (tmp_path / "outputs").exists()


@pytest.mark.parametrize(
    ("values", "gpus_per_node"),
    [({"SLURM_GPUS_ON_NODE": "4"}, 4), ({}, 8), ({"FAKE_MORE_HOSTS": "100000"}, 8)],
)
def test_slurm_batch_runs_multi_node_once_per_node_with_its_rank(
    fake_tools, tmp_path, values, gpus_per_node
):
    # sbatch runs a copy of the file from its spool folder, not from the repository.
    spool = tmp_path / "spool"
    spool.mkdir()
    batch_copy = spool / "slurm_script"
    shutil.copy(script("slurm.sbatch"), batch_copy)
    done, records = run_with_fakes(
        fake_tools,
        ["bash", str(batch_copy), *TRAINER_ARGS],
        spool,
        SLURM_JOB_NODELIST="gpu-node-[07-08]",
        SLURM_NNODES="2",
        SLURM_JOB_ID="4242",
        SLURM_SUBMIT_DIR=REPO_ROOT,
        **values,
    )
    assert done.returncode == 0, done.stderr
    srun_options = next(record["srun"] for record in records if "srun" in record)
    assert "--ntasks-per-node=1" in srun_options
    calls = launched(records)
    assert sorted(call["options"]["--machine_rank"] for call in calls) == ["0", "1"]
    for call in calls:
        assert call["options"]["--config_file"] == os.path.join(CONFIGS, "multi_node.yaml")
        assert call["options"]["--main_process_ip"] == "gpu-node-07"
        assert call["options"]["--main_process_port"] == str(20000 + 4242 % 20000)
        assert call["options"]["--num_machines"] == "2"
        assert call["options"]["--num_processes"] == str(2 * gpus_per_node)
        # A requeued job resumes; the user's own --resume_from_checkpoint comes later and wins.
        assert call["trainer"] == ["--resume_from_checkpoint", "auto", *TRAINER_ARGS]
        assert call["env"]["TORCH_ELASTIC_SHUTDOWN_TIMEOUT"] == "120"
    assert not any("requeue" in record or "scancel" in record for record in records)


@pytest.mark.parametrize("signal_name", ["SIGUSR1", "SIGTERM"])
def test_slurm_batch_stops_training_on_its_signal_and_requeues(fake_tools, tmp_path, signal_name):
    """SLURM's warning before the time limit (USR1) or a preemption (TERM) reaches the batch
    shell: it sends SIGTERM to every task, waits for them, and requeues the job."""
    spool = tmp_path / "spool"
    spool.mkdir()
    batch_copy = spool / "slurm_script"
    shutil.copy(script("slurm.sbatch"), batch_copy)
    folder, log = fake_tools
    env = clean_env(
        FAKE_LOG=str(log),
        FAKE_TRAIN_UNTIL_SIGTERM="1",
        SLURM_JOB_NODELIST="gpu-node-[07-08]",
        SLURM_NNODES="2",
        SLURM_JOB_ID="4242",
        SLURM_SUBMIT_DIR=REPO_ROOT,
    )
    env["PATH"] = f"{folder}{os.pathsep}{env['PATH']}"
    batch = subprocess.Popen(
        ["bash", str(batch_copy), *TRAINER_ARGS],
        cwd=spool,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 30
        while not (log.exists() and log.read_text().count('"argv"') == 2):
            assert time.monotonic() < deadline and batch.poll() is None, "tasks did not start"
            time.sleep(0.05)
        batch.send_signal(getattr(signal, signal_name))
        _, err = batch.communicate(timeout=30)
    finally:
        batch.kill()
    records = [json.loads(line) for line in log.read_text().splitlines()]
    assert batch.returncode == 0, err
    assert {"scancel": ["--signal=TERM", "4242"]} in records
    assert sorted(r["stopped"] for r in records if "stopped" in r) == ["0", "1"]
    assert records[-1] == {"requeue": ["4242"]}  # after every task has stopped
    assert "requeued job 4242" in err


def test_slurm_batch_outside_the_repository_says_so(fake_tools, tmp_path):
    batch_copy = tmp_path / "slurm_script"
    shutil.copy(script("slurm.sbatch"), batch_copy)
    done, records = run_with_fakes(
        fake_tools,
        ["bash", str(batch_copy)],
        tmp_path,
        SLURM_JOB_NODELIST="gpu-node-[07-08]",
        SLURM_NNODES="2",
        SLURM_SUBMIT_DIR=str(tmp_path),
    )
    assert done.returncode != 0
    assert "REPO_ROOT" in done.stderr
    assert records == []


# ---------------------------------------------------------------------------------------------
# Real training on the CPU through the scripts


def test_cpu_debug_trains_two_steps_from_another_directory(tmp_path):
    out = tmp_path / "out"
    log = tmp_path / "cpu_debug.log"
    env = clean_env(OMP_NUM_THREADS="2")
    process = start(
        [script("cpu_debug.sh"), "--max_train_steps", "2", "--output_dir", str(out)],
        env,
        tmp_path,
        log,
    )
    (code,) = wait_all([process], TRAIN_TIMEOUT_S)
    assert code == 0, f"exit {code} (None: timed out)\n{tail(log)}"
    assert (out / "config.json").is_file()
    results = read_json(out / "all_results.json")
    assert results["global_step"] == 2
    assert results["num_processes"] == 1


def test_cpu_debug_never_replaces_a_finished_demo_model_trained_otherwise(tmp_path):
    """`bash launch/cpu_debug.sh --max_train_steps 20` in a folder holding the finished demo
    model of the plain demo: one line naming the folder, the run there and the fix."""
    folder = tmp_path / "outputs" / "demo-ner"
    folder.mkdir(parents=True)
    (folder / ".accel_trainer_demo").write_text("")
    (folder / "model_manifest.json").write_text(json.dumps({"step": 114, "files": {}}))
    (folder / "training_config.json").write_text(json.dumps({"max_train_steps": 0}))
    before = sorted(os.listdir(folder))
    log = tmp_path / "cpu_debug.log"
    process = start([script("cpu_debug.sh"), "--max_train_steps", "20"], clean_env(), tmp_path, log)
    (code,) = wait_all([process], TRAIN_TIMEOUT_S)
    output = tail(log)
    assert code == 1, output  # accelerate launch's status for a failed process
    assert (
        "accel-trainer: error: --output_dir holds the finished model of a demo run with other "
        "options: got 'outputs/demo-ner' (saved at step 114; this run changes max_train_steps "
        "0 -> 20). Pass --output_dir NEW to keep it and train into a new folder, or "
        "--overwrite_output_dir to replace it.\n" in output
    )
    assert "Traceback" not in output
    assert sorted(os.listdir(folder)) == before


@pytest.mark.multiprocess
def test_two_nodes_on_loopback_train_as_one_world(tmp_path):
    # multi_node.yaml asks for bf16 (GPU clusters); the one-node comparison run does not.
    args = ["--max_train_steps", "3", "--mixed_precision", "no"]
    out = tmp_path / "out"  # both "nodes" write here, as on a shared file system
    port = str(free_port())
    processes, logs = [], []
    for rank in ("0", "1"):
        env = clean_env(
            MACHINE_RANK=rank,
            MAIN_PROCESS_IP="127.0.0.1",
            MAIN_PROCESS_PORT=port,
            NUM_MACHINES="2",
            GPUS_PER_NODE="1",
            ACCELERATE_USE_CPU="1",
            OMP_NUM_THREADS="1",
        )
        logs.append(tmp_path / f"node{rank}.log")
        command = [script("multi_node.sh"), *args, "--output_dir", str(out)]
        processes.append(start(command, env, tmp_path, logs[-1]))
    codes = wait_all(processes, TWO_NODE_TIMEOUT_S)
    for rank, (code, log) in enumerate(zip(codes, logs, strict=True)):
        assert code == 0, f"node {rank}: exit {code} (None: timed out)\n{tail(log)}"
    results = read_json(out / "all_results.json")
    assert results["num_processes"] == 2
    assert results["global_step"] == 3
    assert (out / "config.json").is_file()
    node0 = tail(logs[0], 10**6)
    assert len(re.findall(r"world size 2, device cpu", node0)) == 1
    assert "--num_processes 2" in node0

    # The same run on one machine with two processes ends with the same weights.
    from safetensors.torch import load_file

    from tests.test_multiprocess import accelerate_launch

    one_node = tmp_path / "one-node"
    done = accelerate_launch([*args, "--output_dir", str(one_node)])
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    two, one = load_file(out / "model.safetensors"), load_file(one_node / "model.safetensors")
    assert all(torch.equal(two[k], one[k]) for k in one)
