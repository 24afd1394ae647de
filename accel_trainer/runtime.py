"""The process world: Accelerator creation, launcher and world-size checks, agreement between
processes (shared decisions, failures, hashes) and preemption signals."""

from __future__ import annotations

import importlib.util
import logging
import os
import resource
import signal
import sys
import threading
from datetime import timedelta
from typing import TYPE_CHECKING, Any

import torch
import torch.distributed as dist
from accelerate import Accelerator
from accelerate.logging import get_logger
from accelerate.utils import (
    DataLoaderConfiguration,
    InitProcessGroupKwargs,
    broadcast_object_list,
    set_seed,
)

from accel_trainer.errors import ConfigError, OutputError, first_line
from accel_trainer.storage.hashing import json_digest

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig
    from accel_trainer.runtime_options import RuntimeOptions

logger = get_logger(__name__)
# How gloo and NCCL report a peer that is gone or silent.
LOST_PEER_MARKERS = (
    "connection closed by peer",
    "connection reset by peer",
    "timed out",
    "nccl communicator was aborted",
    "broken pipe",
)


def training_accelerator(config: TrainConfig) -> Accelerator:
    """The Accelerator of a training run: its runtime options, trackers and output folder."""
    accelerator = create_accelerator(
        config.runtime, config.resolved_output_dir(), config.logging.report_to
    )
    if config.peft.uses_lora and sharding(accelerator) == "DeepSpeed ZeRO-3":
        raise ConfigError(
            "--peft lora does not run under DeepSpeed ZeRO-3: peft cannot set up its adapters "
            "and trained token rows on partitioned weights (peft issue #2946). Use "
            "accelerate_configs/fsdp.yaml (FSDP2 shards LoRA runs) or deepspeed_zero2.yaml."
        )
    return accelerator


def create_accelerator(
    runtime: RuntimeOptions, project_dir: str | None = None, report_to: str = "none"
) -> Accelerator:
    """An Accelerator on CUDA when present, else CPU, that really spans the launched world;
    `report_to` names Accelerate's trackers, writing under `project_dir`."""
    # CPU whenever CUDA is absent: without cpu=True a multi-process launch on a CPU-only machine
    # starts N separate world-size-1 runs instead of one gloo process group.
    use_cpu = runtime.cpu or not torch.cuda.is_available()
    check_launcher()
    if env_flag("ACCELERATE_USE_DEEPSPEED") and importlib.util.find_spec("deepspeed") is None:
        raise ConfigError(
            "the accelerate config asks for DeepSpeed, which is not installed. Run `pip install "
            'deepspeed` (or -e ".[deepspeed]"), or launch with another accelerate config.'
        )
    try:
        accelerator = new_accelerator(runtime, use_cpu, project_dir, report_to)
    except ValueError as error:  # Accelerate's checks of the launcher's environment and options
        if launched_world_size() > 1:
            raise ConfigError(
                f"the distributed environment is incomplete: {error}. Start multi-process runs "
                "with `accelerate launch` or torchrun, which set RANK, WORLD_SIZE, MASTER_ADDR "
                "and MASTER_PORT."
            ) from None
        raise ConfigError(f"Accelerate refused the settings: {error}") from None
    check_world_size(accelerator)
    if use_cpu and accelerator.mixed_precision == "fp16":
        raise ConfigError(
            "--mixed_precision fp16 does not run on the CPU: Accelerate would compute in "
            "float32 while calling it fp16 (it has no CPU gradient scaler). Use --mixed_precision "
            "bf16 or no (the accelerate config's mixed_precision counts too)."
        )
    if use_cpu and (env_flag("ACCELERATE_USE_FSDP") or env_flag("ACCELERATE_USE_DEEPSPEED")):
        shard_on_cpu(accelerator)
    return accelerator


# The Accelerate versions whose state shard_on_cpu was checked to switch to FSDP or DeepSpeed.
SHARDING_ON_CPU_ACCELERATE = ("1.16", "1.17")


def shard_on_cpu(accelerator: Accelerator) -> None:
    """Run Accelerate's own FSDP2 or DeepSpeed path on CPU processes (gloo): Accelerate picks
    them only for GPU-like devices and would silently give plain data parallel. Everything
    after this is Accelerate's FSDP or DeepSpeed code, as on GPUs."""
    import accelerate
    from packaging.version import Version

    low, high = SHARDING_ON_CPU_ACCELERATE
    if not Version(low) <= Version(accelerate.__version__) < Version(high):
        raise ConfigError(
            f"FSDP and DeepSpeed on CPU processes are known to work with accelerate >={low},"
            f"<{high}: got accelerate {accelerate.__version__}. Install a version in that range, "
            "or run them on GPUs."
        )
    if env_flag("ACCELERATE_USE_DEEPSPEED"):
        deepspeed_on_cpu(accelerator)
    else:
        fsdp_on_cpu(accelerator)


def deepspeed_on_cpu(accelerator: Accelerator) -> None:
    """Switch Accelerate's state to DeepSpeed, as its state does for GPUs; DeepSpeed brings
    its own CPU accelerator and mixed precision."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DeepSpeedPlugin, DistributedType

    plugin = DeepSpeedPlugin()  # from the launcher's ACCELERATE_DEEPSPEED_* settings
    plugin.set_mixed_precision(accelerator.mixed_precision)
    plugin.select(_from_accelerator_state=True)
    state = AcceleratorState()
    state.deepspeed_plugins = plugin
    state._mixed_precision = "no"  # DeepSpeed's config does it, not autocast
    state.distributed_type = DistributedType.DEEPSPEED
    PartialState._shared_state["distributed_type"] = DistributedType.DEEPSPEED
    accelerator.native_amp = False
    logger.info(
        "DeepSpeed ZeRO-%d runs on %d CPU process(es) (gloo)",
        plugin.zero_stage,
        accelerator.num_processes,
    )


def fsdp_on_cpu(accelerator: Accelerator) -> None:
    """Switch Accelerate's state to FSDP2 with the launcher's settings."""
    from accelerate.state import AcceleratorState, PartialState
    from accelerate.utils import DistributedType, FullyShardedDataParallelPlugin

    version = os.environ.get("FSDP_VERSION", "1")  # Accelerate's default
    if version != "2":
        raise ConfigError(
            f"fsdp_version {version} on CPU: only FSDP2 runs on CPU processes. Set "
            "fsdp_version: 2 in the accelerate config (accelerate_configs/fsdp.yaml does)."
        )
    if env_flag("FSDP_OFFLOAD_PARAMS"):
        raise ConfigError(
            "fsdp_offload_params: true on CPU processes: the parameters are in CPU memory "
            "already, there is nothing to offload them from. Set it to false."
        )
    plugin = FullyShardedDataParallelPlugin()  # from the launcher's FSDP_* settings
    if accelerator.mixed_precision != "no":
        plugin.set_mixed_precision(accelerator.mixed_precision)
    state = AcceleratorState()
    state.fsdp_plugin = plugin
    state.distributed_type = DistributedType.FSDP
    PartialState._shared_state["distributed_type"] = DistributedType.FSDP
    logger.info("FSDP2 runs on %d CPU process(es) (gloo)", accelerator.num_processes)


def sharding(accelerator: Accelerator) -> str:
    """How the processes split the model and optimizer, as results and checkpoints record it:
    "none" (each holds them whole), "FSDP2 FULL_SHARD" (parameters resharded after forward),
    "FSDP2 SHARD_GRAD_OP", "FSDP1 ..." or "DeepSpeed ZeRO-<stage>"."""
    kind = accelerator.distributed_type.value
    if kind == "FSDP":
        plugin = accelerator.state.fsdp_plugin
        if plugin.fsdp_version == 2:
            strategy = "FULL_SHARD" if plugin.reshard_after_forward else "SHARD_GRAD_OP"
        else:
            strategy = plugin.sharding_strategy.name
        saved = "" if plugin.state_dict_type.name == "SHARDED_STATE_DICT" else " full checkpoints"
        return f"FSDP{plugin.fsdp_version} {strategy}{saved}"
    if kind == "DEEPSPEED":
        return f"DeepSpeed ZeRO-{accelerator.state.deepspeed_plugin.zero_stage}"
    return "none"


def checkpoint_layout(sharding_name: str) -> str:
    """What a checkpoint's files look like under `sharding_name`: FSDP2 writes the same files
    whether or not it reshards after forward (sharded ones, unless full checkpoints)."""
    if sharding_name.startswith("FSDP2"):
        return "FSDP2" + (" full checkpoints" if sharding_name.endswith("full checkpoints") else "")
    return sharding_name


def fit_sharding_to_model(accelerator: Accelerator, model, config: TrainConfig) -> None:
    """Fit the sharding plugin to the model and the run before the model is prepared."""
    if accelerator.distributed_type.value == "DEEPSPEED":
        fit_deepspeed_to_run(accelerator, config)
    else:
        fit_fsdp_wrapping(accelerator, model)  # nothing to fit without FSDP2


def fit_deepspeed_to_run(accelerator: Accelerator, config: TrainConfig) -> None:
    """DeepSpeed's batch and clipping settings are the trainer's options: the step marks the
    accumulation boundary itself and scales the loss itself."""
    settings = accelerator.state.deepspeed_plugin.deepspeed_config
    batch = config.batching.per_device_train_batch_size
    accumulation = config.batching.resolved_accumulation_steps(accelerator.num_processes)
    settings["train_micro_batch_size_per_gpu"] = batch
    settings["gradient_accumulation_steps"] = accumulation
    settings["train_batch_size"] = batch * accumulation * accelerator.num_processes
    settings["gradient_clipping"] = config.optim.max_grad_norm


def fit_fsdp_wrapping(accelerator: Accelerator, model) -> None:
    """Under FSDP2 with the transformer-based wrap policy, shard each layer class the config
    names (else the model's `_no_split_modules`) except the one holding the input embeddings:
    Accelerate shards those in a unit of their own, and torch >= 2.13 refuses a parameter that
    its parent's unit already sharded (BERT lists BertEmbeddings)."""
    from torch.distributed.fsdp.wrap import transformer_auto_wrap_policy

    if not accelerator.is_fsdp2:
        return
    plugin = accelerator.state.fsdp_plugin
    if plugin.auto_wrap_policy is not transformer_auto_wrap_policy:
        return
    named = plugin.transformer_cls_names_to_wrap  # the accelerate config's, if it names any
    classes = {type(module).__name__ for module in model.modules()}
    unknown = [name for name in named or [] if name not in classes]
    if unknown:
        layers = getattr(model, "_no_split_modules", None) or sorted(classes)[:3]
        raise ConfigError(
            f"fsdp_transformer_layer_cls_to_wrap names {', '.join(unknown)}, which the model "
            f"has no layer of: got {','.join(named)}. Name layer classes of the model (e.g. "
            f"{', '.join(layers)}), or leave it out."
        )
    embeddings = model.get_input_embeddings()
    holders = {
        type(module).__name__
        for module in model.modules()
        if any(inner is embeddings for inner in module.modules())
    }
    layers = named or getattr(model, "_no_split_modules", None) or []
    plugin.transformer_cls_names_to_wrap = [name for name in layers if name not in holders]


def prepare_sharded(accelerator: Accelerator, *objects):
    """accelerator.prepare, with Accelerate's refusals of a sharding config in one line."""
    try:
        return accelerator.prepare(*objects)
    except (ValueError, TypeError, RuntimeError) as error:
        kind = sharding(accelerator)
        if kind == "none":
            raise
        raise ConfigError(
            f"Accelerate could not shard the model with this accelerate config "
            f"({kind}): {first_line(error)}. Check its fsdp_* or "
            "deepspeed_* settings, or start from accelerate_configs/fsdp.yaml."
        ) from None


def new_accelerator(
    runtime: RuntimeOptions, use_cpu: bool, project_dir: str | None, report_to: str
) -> Accelerator:
    return Accelerator(
        cpu=use_cpu,
        mixed_precision=runtime.mixed_precision,
        # Accumulation is the step's own (train/step.py, with no_sync): Accelerate's counter
        # stays at one micro-batch per step, so backward() never rescales the loss.
        # We step the scheduler ourselves, once per optimizer step: Accelerate would otherwise
        # step it once per process, decaying the learning rate N times too fast.
        step_scheduler_with_optimizer=False,
        dataloader_config=DataLoaderConfiguration(use_seedable_sampler=True),
        kwargs_handlers=[InitProcessGroupKwargs(timeout=timedelta(seconds=runtime.ddp_timeout))],
        log_with=None if report_to == "none" else report_to,
        project_dir=project_dir,
    )


def env_flag(name: str) -> bool:
    return os.environ.get(name, "").lower() in ("1", "true", "yes", "y", "on")


def launched_world_size() -> int:
    """The number of processes the launcher started (WORLD_SIZE), before any process group."""
    return int(os.environ.get("WORLD_SIZE", "1"))


def check_launcher() -> None:
    """Stop when `accelerate launch` was asked for several processes but started one."""
    # Its simple launcher (--cpu or a MULTI_CPU config) sets the rendezvous address for
    # --num_processes > 1 but starts a single process, without RANK or WORLD_SIZE.
    simple_launcher = "ACCELERATE_MIXED_PRECISION" in os.environ and "KMP_BLOCKTIME" in os.environ
    if simple_launcher and "MASTER_PORT" in os.environ and "WORLD_SIZE" not in os.environ:
        raise ConfigError(
            "`accelerate launch` was asked for several processes but started only this one: "
            "with --cpu or a MULTI_CPU config it starts one process (more need mpirun). Use "
            "`accelerate launch --multi_gpu --num_processes N` (the trainer runs on the CPU when "
            "there is no GPU) or accelerate_configs/cpu_2proc.yaml; for one process, drop "
            "--num_processes or unset MASTER_PORT."
        )


def check_world_size(accelerator: Accelerator) -> None:
    """Stop when the launcher meant more processes than joined the process group."""
    launched = launched_world_size()
    if accelerator.num_processes != launched:
        raise ConfigError(
            f"the process group has {accelerator.num_processes} process(es) but the launcher "
            f"started WORLD_SIZE={launched}: each process would train alone. Launch with "
            "`accelerate launch --multi_gpu --num_processes N` (on CPU too) or torchrun, and do "
            "not set WORLD_SIZE by hand."
        )


def seed_everything(seed: int, per_process: bool = False) -> None:
    """Seed Python, NumPy and torch (and CUDA); `per_process` offsets the seed by rank."""
    set_seed(seed, device_specific=per_process)


def short_hash(value: Any) -> int:
    """A signed 64-bit hash of a JSON-able value, the same in every process."""
    return int.from_bytes(bytes.fromhex(json_digest(value, 16)), "big", signed=True)


def check_same_on_every_process(accelerator: Accelerator, parts: dict[str, Any]) -> None:
    """Stop every process, with one message, when they disagree on any of `parts` (options,
    labels, data): one all-gather of a short hash of each."""
    if accelerator.num_processes == 1:
        return
    digests = [short_hash(value) for value in parts.values()]
    local = torch.tensor(digests, dtype=torch.int64, device=accelerator.device)
    everyone = accelerator.gather(local).view(accelerator.num_processes, len(parts)).tolist()
    disagreements = []
    for column, name in enumerate(parts):
        others = [rank for rank, row in enumerate(everyone) if row[column] != everyone[0][column]]
        if others:
            disagreements.append(f"process(es) {others} see other {name} than process 0")
    if disagreements:
        accelerator.wait_for_everyone()  # every process has seen the others' hashes
        raise ConfigError(
            "the processes of this run disagree: "
            + "; ".join(disagreements)
            + ". Give every process the same command line and config file, and the same data "
            "files (on a file system every node sees, with the same contents)."
        )


def share_from_main(accelerator: Accelerator, value: Any) -> Any:
    """The main process's `value` (any picklable object), on every process."""
    if accelerator.num_processes == 1:
        return value
    return broadcast_object_list([value])[0]


def on_main_then_share(accelerator: Accelerator, decide):
    """`decide()` on the main process, its answer (or its ConfigError) on every process."""
    answer: list = [None, None]  # result, error
    if accelerator.is_main_process:
        try:
            answer[0] = decide()
        except ConfigError as error:
            answer[1] = str(error)
    answer = share_from_main(accelerator, answer)
    if answer[1] is not None:
        raise ConfigError(answer[1])
    return answer[0]


def raise_if_any_failed(accelerator: Accelerator, failure: str | None, target: str) -> None:
    """Every process learns whether any failed (one tiny all-reduce), and all raise."""
    if accelerator.num_processes > 1:
        flag = torch.tensor(float(failure is not None), device=accelerator.device)
        if accelerator.reduce(flag, reduction="max").item() == 0:
            return
        if failure is None:
            failure = f"another process could not write into {target}"
    if failure is not None:
        raise OutputError(failure)


def is_lost_peer(error: RuntimeError) -> bool:
    """Whether a collective failed because another process is gone or silent."""
    if isinstance(error, torch.distributed.DistError):
        return True
    message = str(error).lower()
    return any(marker in message for marker in LOST_PEER_MARKERS)


def peak_memory_mb(device: torch.device) -> float:
    """Peak memory of this process: allocated GPU memory, or resident memory on CPU."""
    if device.type == "cuda":
        return torch.cuda.max_memory_allocated(device) / 2**20
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


class Preemption:
    """SIGTERM (sent by torchrun and schedulers) and SIGUSR1 (SLURM's --signal) ask the run to
    stop at the next optimizer step, after a committed checkpoint; every process gets the same
    answer through Accelerate's trigger, so all stop at the same step."""

    SIGNALS = (signal.SIGTERM, signal.SIGUSR1)

    def __init__(self, accelerator: Accelerator):
        self.accelerator = accelerator
        self.requested = False
        self._previous: dict = {}

    def __enter__(self) -> Preemption:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._request) for sig in self.SIGNALS}
        return self

    def __exit__(self, *exc) -> None:
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous = {}

    def _request(self, signum, frame) -> None:
        self.requested = True

    def agreed(self) -> bool:
        """Whether any process was asked to stop (one tiny all-reduce per call)."""
        if self.requested:
            self.accelerator.set_trigger()
        return self.accelerator.check_trigger()


def leave_process_group() -> None:
    """Tear the process group down before exiting after an error."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def exit_distributed_run(status: int = 0, wait_for_all: bool = True) -> None:
    """End a multi-process command here with `status` (after a barrier, with `wait_for_all`):
    flush and exit without running destructors.
    Freeing DDP's reducer, which holds the gloo group, can deadlock: the group's destructor
    joins a worker thread that waits for the GIL the freeing thread holds (seen in about 1 run
    in 3 under `accelerate launch`). Accelerate's end_training has already left the group, so
    the launcher's WORLD_SIZE says whether this is a multi-process run. One process: returns."""
    if launched_world_size() <= 1:
        return
    if wait_for_all and dist.is_available() and dist.is_initialized():
        dist.barrier()
    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(status)
