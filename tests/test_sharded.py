"""FSDP2 on CPU processes (gloo), through Accelerate's own FSDP path: the same results as one
process, sharded checkpoints under the commit protocol, bit-exact resume, the gathered final
model, LoRA, mixed precision, layouts and two nodes on loopback."""

import importlib.util
import os
import shutil
import subprocess
import sys

import pytest
import torch
from safetensors.torch import load_file

from accel_trainer import TrainConfig, commands
from tests.conftest import (
    REPO_ROOT,
    evaluate_saved,
    free_port,
    read_json,
    read_jsonl,
    reset_accelerate,
    start,
    tail,
    wait_all,
    without_dropout,
)

pytestmark = pytest.mark.multiprocess
LAUNCH_TIMEOUT_S = 300
HOOKED_TRAIN = os.path.join(REPO_ROOT, "tests", "hooked_train.py")
TOLERANCE = 1e-5  # the weights move by ~1e-2 in these runs
FSDP = os.path.join(REPO_ROOT, "accelerate_configs", "fsdp.yaml")
DDP = os.path.join(REPO_ROOT, "accelerate_configs", "cpu_2proc.yaml")


def flags(values: dict) -> list[str]:
    return [part for name, value in values.items() for part in (f"--{name}", str(value))]


def launch_args(config, num_processes=2, mixed_precision="no", port=None):
    return [
        sys.executable, "-m", "accelerate.commands.launch", "--config_file", config,
        "--num_processes", str(num_processes), "--mixed_precision", mixed_precision,
        "--main_process_port", str(port or free_port()),
    ]  # fmt: skip


def launch(args, config=FSDP, num_processes=2, mixed_precision="no", **env_values):
    """`accelerate launch` of tests/hooked_train.py train with `args` (dropout off)."""
    command = [*launch_args(config, num_processes, mixed_precision), HOOKED_TRAIN, "train", *args]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_DROPOUT": "1", **env_values}
    return subprocess.run(
        command, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, cwd=REPO_ROOT,
        env=env, start_new_session=True,
    )  # fmt: skip


def launched(args, **kwargs) -> subprocess.CompletedProcess:
    done = launch(args, **kwargs)
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    return done


def options(data, output_dir, **overrides) -> dict:
    values = dict(
        train_file=data[0], validation_file=data[1], output_dir=str(output_dir),
        num_train_epochs=3, learning_rate=3e-3, warmup_ratio=0.3, logging_steps=1,
        per_device_eval_batch_size=2, checkpointing_steps=2, save_total_limit=3,
    )  # fmt: skip
    return {**values, **overrides}


def train_here(data, output_dir, **overrides) -> dict:
    """One process, in this one, dropout off; returns the results."""
    config = TrainConfig.from_options(**options(data, output_dir, **overrides))
    trainer = commands.build_trainer(config)
    without_dropout(trainer)
    results = trainer.fit()
    reset_accelerate()
    return results


def max_difference(folder_a, folder_b, weights="model.safetensors") -> float:
    a, b = load_file(folder_a / weights), load_file(folder_b / weights)
    assert a.keys() == b.keys()
    return max((a[k] - b[k]).abs().max().item() for k in a)


def history(folder, key) -> list[float]:
    return [r[key] for r in read_jsonl(folder / "log_history.jsonl") if key in r]


def eval_metrics(results: dict) -> dict:
    return {k: v for k, v in results.items() if k.startswith("eval_") and k != "eval_loss"}


@pytest.fixture(scope="module")
def runs(scaling_data, tmp_path_factory):
    """One process x 32, and FSDP2 on 2 processes x 16 and x 8 x 2 accumulation (64 sentences,
    6 optimizer steps): {name: (output folder, launch output)}."""
    root = tmp_path_factory.mktemp("fsdp")
    train_here(scaling_data, root / "one", global_batch_size=32)
    found = {"one": (root / "one", "")}
    for name, batch in (("fsdp", 16), ("fsdp_accumulated", 8)):
        args = flags(options(scaling_data, root / name, per_device_train_batch_size=batch,
                             global_batch_size=32))  # fmt: skip
        done = launched(args)
        found[name] = (root / name, done.stdout + done.stderr)
    return found


@pytest.mark.parametrize("name", ["fsdp", "fsdp_accumulated"])
def test_fsdp2_on_two_cpu_processes_trains_like_one_process(runs, name):
    one, (folder, output) = runs["one"][0], runs[name]
    assert output.count("FSDP2 runs on 2 CPU process(es) (gloo)") == 1
    results, reference = read_json(folder / "all_results.json"), read_json(one / "all_results.json")
    assert (results["distributed_type"], results["sharding"]) == ("FSDP", "FSDP2 FULL_SHARD")
    assert (reference["distributed_type"], reference["sharding"]) == ("NO", "none")
    assert max_difference(one, folder) < TOLERANCE
    assert history(folder, "learning_rate") == history(one, "learning_rate")
    assert len(history(folder, "loss")) == 6
    assert history(folder, "loss") == pytest.approx(history(one, "loss"), rel=1e-5)
    assert eval_metrics(results) == eval_metrics(reference)
    assert results["eval_loss"] == pytest.approx(reference["eval_loss"], rel=1e-6)


def test_fsdp2_checkpoints_are_sharded_and_committed_with_checksums(runs):
    folder = runs["fsdp"][0]
    checkpoint = folder / "checkpoint-6"
    manifest = read_json(checkpoint / "manifest.json")
    shards = {
        name for name in manifest["files"] if name.endswith(".distcp") or "/.metadata" in name
    }
    assert {
        "pytorch_model_fsdp_0/__0_0.distcp", "pytorch_model_fsdp_0/__1_0.distcp",
        "pytorch_model_fsdp_0/.metadata", "optimizer_0/__0_0.distcp",
        "optimizer_0/__1_0.distcp", "optimizer_0/.metadata",
    } == shards  # fmt: skip
    assert all(len(entry["sha256"]) == 64 for entry in manifest["files"].values())
    assert manifest["world_size"] == 2
    assert read_json(checkpoint / "trainer_state.json")["sharding"] == "FSDP2 FULL_SHARD"
    assert not (checkpoint / "model.safetensors").exists()  # each rank wrote its part only
    assert sorted(p.name for p in folder.glob("checkpoint-*")) == [
        "checkpoint-2", "checkpoint-4", "checkpoint-6",
    ]  # fmt: skip


def test_the_gathered_fsdp2_model_is_a_plain_folder_that_evaluates_the_same(
    runs, scaling_data, tmp_path
):
    from transformers import AutoModelForTokenClassification, pipeline

    folder = runs["fsdp"][0]
    model = AutoModelForTokenClassification.from_pretrained(folder)
    assert model.config.architectures == ["BertForTokenClassification"]
    assert all(p.dtype == torch.float32 for p in model.parameters())
    tagger = pipeline("token-classification", model=str(folder), aggregation_strategy="first")
    assert isinstance(tagger("Alice visited Paris in May ."), list)
    metrics = evaluate_saved(folder, scaling_data[1], tmp_path / "eval")
    results = read_json(folder / "all_results.json")
    assert eval_metrics(metrics) == eval_metrics(results)
    assert metrics["eval_loss"] == pytest.approx(results["eval_loss"], rel=1e-6)


def test_a_kill_inside_a_sharded_save_loses_nothing_and_resume_is_bit_exact(
    runs, scaling_data, tmp_path
):
    full = runs["fsdp"][0]
    out = tmp_path / "killed"
    args = flags(options(scaling_data, out, per_device_train_batch_size=16, global_batch_size=32))
    killed = launch(args, KILL_IN_SAVE_AT_STEP="4")
    assert killed.returncode != 0
    assert (out / ".tmp-checkpoint-4").is_dir()  # rank 1's shards written, never committed
    assert not (out / "checkpoint-4").exists()
    assert (out / "checkpoint-2" / "manifest.json").exists()
    resumed = launched([*args, "--resume_from_checkpoint", "auto"])
    assert "resumed from" in resumed.stderr and "checkpoint-2 at step 2" in resumed.stderr
    expected, got = load_file(full / "model.safetensors"), load_file(out / "model.safetensors")
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    assert not (out / ".tmp-checkpoint-4").exists()
    assert history(out, "loss") == history(full, "loss")


def test_a_sharded_checkpoint_resumed_without_sharding_gets_one_line(runs, scaling_data, tmp_path):
    out = tmp_path / "out"
    out.mkdir()
    shutil.copytree(runs["fsdp"][0] / "checkpoint-4", out / "checkpoint-4")
    args = flags(options(scaling_data, out, per_device_train_batch_size=16, global_batch_size=32))
    done = launch([*args, "--resume_from_checkpoint", "auto"], config=DDP)
    assert done.returncode != 0
    assert (
        "checkpoint-4 was saved with sharding 'FSDP2 FULL_SHARD', this run has 'none': its "
        "model and optimizer files are laid out for that one." in done.stderr
    )
    assert "[rank0]: Traceback" not in done.stderr  # torchrun's own summary follows, as ever


def test_lora_under_fsdp2_merges_the_same_adapters_as_one_process(scaling_data, tmp_path):
    lora = dict(peft="lora", lora_dropout=0.0, global_batch_size=32, checkpointing_steps=3)
    train_here(scaling_data, tmp_path / "one", **lora)
    args = flags(options(scaling_data, tmp_path / "fsdp", per_device_train_batch_size=16, **lora))
    launched(args)
    assert max_difference(tmp_path / "one", tmp_path / "fsdp") < TOLERANCE
    results = read_json(tmp_path / "fsdp" / "all_results.json")
    assert results["peft"]["saved"] == "merged" and results["sharding"] == "FSDP2 FULL_SHARD"
    assert not (tmp_path / "fsdp" / "adapter_config.json").exists()  # plain merged weights


def re_base(folder, words_file) -> str:
    """A small random BERT (with its pooler) saved as a "pretrained" base for RE."""
    from accel_trainer.models import build_tiny_bert, build_wordpiece_tokenizer
    from accel_trainer.tasks import ReTask

    task = ReTask()
    tokenizer = build_wordpiece_tokenizer(list(task.words(task.read(words_file, "train", "auto"))))
    torch.manual_seed(0)
    build_tiny_bert("AutoModel", len(tokenizer), ["A", "B"], 128).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return str(folder)


def test_re_lora_adapter_under_fsdp2_trains_the_markers_and_evaluates_the_same(tmp_path):
    from accel_trainer.tasks.demo import write_demo_re_corpus

    train, dev = write_demo_re_corpus(str(tmp_path / "data"), num_train=96, num_dev=24)
    base = re_base(tmp_path / "base", train)
    out = tmp_path / "adapter"
    args = flags(dict(task="re", train_file=train, validation_file=dev, output_dir=out,
                      model_name_or_path=base, peft="lora", num_train_epochs=2,
                      per_device_train_batch_size=8, learning_rate=3e-3))  # fmt: skip
    launched([*args, "--save_adapter_only"])
    results = read_json(out / "all_results.json")
    assert len(results["peft"]["trained_token_ids"]) == 4  # <e1> </e1> <e2> </e2>
    adapter = load_file(out / "adapter_model.safetensors")
    assert any("trainable_tokens" in key for key in adapter)
    assert not (out / "model.safetensors").exists()
    metrics = evaluate_saved(out, dev, tmp_path / "eval")
    assert eval_metrics(metrics) == eval_metrics(results)


def test_sorted_micro_batches_and_gradient_checkpointing_under_fsdp2_match_ddp(tmp_path):
    """The sorted layout splits each process's examples its own way: every process still runs
    the same number of forward passes (FSDP2 gathers shards in each)."""
    from accel_trainer.tasks.demo import write_demo_re_corpus

    train, dev = write_demo_re_corpus(str(tmp_path / "data"), num_train=64, num_dev=16)
    common = dict(task="re", train_file=train, validation_file=dev, num_train_epochs=1,
                  per_device_train_batch_size=16, batch_layout="sorted", micro_batch_tokens=96,
                  logging_steps=1)  # fmt: skip
    for name, config in (("ddp", DDP), ("fsdp", FSDP)):
        args = flags({**common, "output_dir": tmp_path / name})
        launched([*args, "--gradient_checkpointing"], config=config)
    assert max_difference(tmp_path / "ddp", tmp_path / "fsdp") < TOLERANCE
    assert history(tmp_path / "fsdp", "loss") == pytest.approx(
        history(tmp_path / "ddp", "loss"), rel=1e-5
    )


def test_bf16_under_fsdp2_on_cpu_trains_and_saves_float32(scaling_data, tmp_path):
    out = tmp_path / "bf16"
    done = launched(flags(options(scaling_data, out, per_device_train_batch_size=16)),
                    mixed_precision="bf16")  # fmt: skip
    assert "distributed type FSDP, mixed precision bf16" in done.stderr
    saved = load_file(out / "model.safetensors")
    assert {tensor.dtype for tensor in saved.values()} == {torch.float32}
    losses = history(out, "loss")
    assert all(loss == loss for loss in losses) and losses[-1] < losses[0]


def test_fp16_on_the_cpu_is_refused_in_one_line(tmp_path, capsys):
    from accel_trainer.cli import main

    status = main(["train", "--output_dir", str(tmp_path / "out"), "--mixed_precision", "fp16"])
    assert status != 0
    assert "--mixed_precision fp16 does not run on the CPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_two_fsdp2_nodes_on_loopback_end_with_the_weights_of_one_node(runs, scaling_data, tmp_path):
    out = tmp_path / "nodes"
    args = flags(options(scaling_data, out, per_device_train_batch_size=16, global_batch_size=32))
    port = free_port()
    processes = []
    for rank in (0, 1):
        command = [
            *launch_args(FSDP, num_processes=2, port=port), "--num_machines", "2",
            "--machine_rank", str(rank), "--main_process_ip", "127.0.0.1", HOOKED_TRAIN,
            "train", *args,
        ]  # fmt: skip
        env = {**os.environ, "OMP_NUM_THREADS": "1", "NO_DROPOUT": "1"}
        processes.append(start(command, env, REPO_ROOT, tmp_path / f"node{rank}.log"))
    codes = wait_all(processes, LAUNCH_TIMEOUT_S)
    assert codes == [0, 0], tail(tmp_path / "node0.log") + tail(tmp_path / "node1.log")
    expected, got = (
        load_file(runs["fsdp"][0] / "model.safetensors"),
        load_file(out / "model.safetensors"),
    )
    assert all(torch.equal(expected[key], got[key]) for key in expected)


def test_fsdp_on_cpu_holds_for_the_accelerate_versions_it_was_checked_with(monkeypatch):
    import accelerate

    from accel_trainer.errors import ConfigError
    from accel_trainer.runtime import shard_on_cpu

    monkeypatch.setattr(accelerate, "__version__", "1.99.0")
    known = r"are known to work with accelerate >=1\.16,<1\.17: got accelerate 1\.99\.0"
    with pytest.raises(ConfigError, match=known):
        shard_on_cpu(None)


def test_fsdp1_on_cpu_is_refused_in_one_line(monkeypatch):
    from accel_trainer.errors import ConfigError
    from accel_trainer.runtime import shard_on_cpu

    monkeypatch.setenv("FSDP_VERSION", "1")
    with pytest.raises(ConfigError, match="only FSDP2 runs on CPU processes"):
        shard_on_cpu(None)


needs_deepspeed = pytest.mark.skipif(
    importlib.util.find_spec("deepspeed") is None,
    reason="DeepSpeed is not installed: pip install -e '.[deepspeed]'",
)
ZERO = {stage: os.path.join(REPO_ROOT, "accelerate_configs", f"deepspeed_zero{stage}.yaml")
        for stage in (2, 3)}  # fmt: skip


@needs_deepspeed
@pytest.mark.parametrize("stage", sorted(ZERO))
def test_deepspeed_zero_on_two_cpu_processes_trains_like_one_process_and_resumes_bit_exact(
    runs, scaling_data, tmp_path, stage
):
    # From a saved model: ZeRO-3 builds a new model partitioned, with other random weights.
    base = str(runs["one"][0])
    one, out, part = tmp_path / "one", tmp_path / "zero", tmp_path / "part"
    train_here(scaling_data, one, global_batch_size=32, model_name_or_path=base)
    # 2 processes x 8 x 2 accumulated micro-batches: DeepSpeed steps on the step's last one.
    zero = dict(per_device_train_batch_size=8, global_batch_size=32, model_name_or_path=base)
    args = flags(options(scaling_data, out, **zero))
    done = launched(args, config=ZERO[stage])
    assert f"DeepSpeed ZeRO-{stage} runs on 2 CPU process(es) (gloo)" in done.stderr
    results, reference = read_json(out / "all_results.json"), read_json(one / "all_results.json")
    assert (results["distributed_type"], results["sharding"]) == (
        "DEEPSPEED", f"DeepSpeed ZeRO-{stage}",
    )  # fmt: skip
    assert max_difference(one, out) < TOLERANCE
    assert history(out, "learning_rate") == history(one, "learning_rate")
    assert history(out, "loss") == pytest.approx(history(one, "loss"), rel=1e-5)
    assert eval_metrics(results) == eval_metrics(reference)
    part.mkdir()
    shutil.copytree(out / "checkpoint-4", part / "checkpoint-4")
    resume = flags(options(scaling_data, part, **zero))
    launched([*resume, "--resume_from_checkpoint", "auto"], config=ZERO[stage])
    expected, got = load_file(out / "model.safetensors"), load_file(part / "model.safetensors")
    assert all(torch.equal(expected[key], got[key]) for key in expected)
    metrics = evaluate_saved(out, scaling_data[1], tmp_path / "eval")
    assert eval_metrics(metrics) == eval_metrics(results)


@needs_deepspeed
def test_lora_under_zero3_is_refused_in_one_line_before_any_model(tmp_path):
    done = launch(["--output_dir", str(tmp_path / "out"), "--peft", "lora"], config=ZERO[3])
    assert done.returncode != 0
    assert "--peft lora does not run under DeepSpeed ZeRO-3" in done.stderr
    assert "[rank0]: Traceback" not in done.stderr and not (tmp_path / "out").exists()


# Found by the adversarial pass.


def test_evaluate_under_fsdp2_on_two_processes_gives_the_metrics_of_one(
    runs, scaling_data, tmp_path
):
    folder, out = runs["fsdp"][0], tmp_path / "eval"
    command = [*launch_args(FSDP), "-m", "accel_trainer", "evaluate", "--model_name_or_path",
               str(folder), "--validation_file", scaling_data[1],
               "--output_dir", str(out)]  # fmt: skip
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=LAUNCH_TIMEOUT_S, cwd=REPO_ROOT,
        env={**os.environ, "OMP_NUM_THREADS": "1"}, start_new_session=True,
    )  # fmt: skip
    assert done.returncode == 0, (done.stdout + done.stderr)[-3000:]
    metrics, results = read_json(out / "eval_results.json"), read_json(folder / "all_results.json")
    assert eval_metrics(metrics) == eval_metrics(results)


def test_a_failed_sharded_write_is_one_line_and_removes_its_temporary_folder(tmp_path):
    from torch.distributed.checkpoint.api import CheckpointException

    from accel_trainer.storage.commit import attempt, make_temporary

    folder = str(tmp_path / ".tmp-checkpoint-2")

    def write():
        make_temporary(folder)
        failure = RuntimeError("[enforce fail at inline_container.cc:672] file write failed")
        raise CheckpointException("save", {0: (failure, None)})

    message = attempt(write, folder)
    assert message.startswith(f"could not write {folder}: [enforce fail at inline_container")
    assert "what was committed before is intact" in message
    assert not os.path.exists(folder)


def test_a_checkpoint_without_every_process_files_is_not_committed(tmp_path):
    from accel_trainer.storage.commit import make_temporary
    from accel_trainer.train.checkpointer import missing_process_files

    folder = str(tmp_path / ".tmp-checkpoint-2")
    make_temporary(folder)
    open(os.path.join(folder, "random_states_0.pkl"), "w").close()
    assert missing_process_files(folder, 1) is None
    message = missing_process_files(folder, 2)
    assert "the checkpoint files of process(es) [1] are not in" in message
    assert "on a file system every node sees" in message and not os.path.exists(folder)


def test_fsdp_settings_that_cannot_work_on_cpu_or_for_the_model_get_one_line(monkeypatch):
    from types import SimpleNamespace

    from accel_trainer.errors import ConfigError
    from accel_trainer.models import build_tiny_bert
    from accel_trainer.runtime import fit_fsdp_wrapping, shard_on_cpu

    monkeypatch.setenv("FSDP_VERSION", "2")
    monkeypatch.setenv("FSDP_OFFLOAD_PARAMS", "true")
    with pytest.raises(ConfigError, match="fsdp_offload_params: true on CPU processes"):
        shard_on_cpu(None)
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    plugin = SimpleNamespace(
        auto_wrap_policy=transformer_auto_wrap_policy, transformer_cls_names_to_wrap=None
    )
    accelerator = SimpleNamespace(is_fsdp2=True, state=SimpleNamespace(fsdp_plugin=plugin))
    model = build_tiny_bert("AutoModelForTokenClassification", 50, ["O", "B-X"], 32)
    fit_fsdp_wrapping(accelerator, model)  # BertEmbeddings holds the input embeddings
    assert plugin.transformer_cls_names_to_wrap == ["BertLayer"]
    plugin.transformer_cls_names_to_wrap = ["BertLayer", "BertEmbeddings"]  # named by a user
    fit_fsdp_wrapping(accelerator, model)
    assert plugin.transformer_cls_names_to_wrap == ["BertLayer"]
    plugin.transformer_cls_names_to_wrap = ["NoSuchLayer"]
    with pytest.raises(ConfigError, match="names NoSuchLayer, which the model has no layer of"):
        fit_fsdp_wrapping(accelerator, model)


def test_fsdp2_checkpoints_of_full_state_dicts_are_another_layout():
    from accel_trainer.runtime import checkpoint_layout

    assert checkpoint_layout("FSDP2 FULL_SHARD") == checkpoint_layout("FSDP2 SHARD_GRAD_OP")
    assert checkpoint_layout("FSDP2 FULL_SHARD full checkpoints") != "FSDP2"
    assert checkpoint_layout("none") != checkpoint_layout("DeepSpeed ZeRO-2")
