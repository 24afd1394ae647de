"""The runtime and compute options (TrainConfig.runtime, TrainConfig.compute), read by
runtime.py and the model preparation: seed, precision, device, collective timeout; compiling
and recomputing activations."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import MAX_DDP_TIMEOUT, MAX_SEED, MIXED_PRECISION, opt
from accel_trainer.config.options import OptionGroup


@dataclass
class RuntimeOptions(OptionGroup):
    """Where and how the processes run: seed, precision, device, collective timeout."""

    title: ClassVar[str] = "runtime"

    seed: int = field(default=42, metadata=opt("Seed for model init, data order and dropout."))
    mixed_precision: str | None = field(
        default=None,
        metadata=opt(
            "no, fp16 or bf16, passed to Accelerate. Default: the accelerate config's setting "
            "(`accelerate launch`), else no.",
            choices=list(MIXED_PRECISION),
        ),
    )
    cpu: bool = field(default=False, metadata=opt("Run on CPU even when a GPU is present."))
    ddp_timeout: int = field(
        default=300,
        metadata=opt(
            "Seconds a process waits in a collective (all-reduce, barrier) for the others before "
            "it fails: bounds the hang when a process or node is lost.",
            on_resume="free",
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if not 0 <= self.seed <= MAX_SEED:
            found.append(
                f"--seed must be in [0, {MAX_SEED}] (2**32 - 1): got {self.seed}. Use e.g. 42."
            )
        if self.ddp_timeout <= 0:
            found.append(f"--ddp_timeout must be positive: got {self.ddp_timeout}. E.g. 300.")
        elif self.ddp_timeout > MAX_DDP_TIMEOUT:
            found.append(
                f"--ddp_timeout must be at most {MAX_DDP_TIMEOUT} seconds (365 days): got "
                f"{self.ddp_timeout}. E.g. 300; it bounds how long a lost process can hang the run."
            )
        return found


@dataclass
class ComputeOptions(OptionGroup):
    """How the model computes a training step: compiled, and with activations recomputed."""

    title: ClassVar[str] = "compute"

    torch_compile: bool = field(
        default=False,
        metadata=opt(
            "Compile the model's forward with torch.compile (inductor, in place: checkpoints "
            "and the saved model are the same as without). Each new input shape compiles "
            "first, so it pays off for long runs; see docs/batching.md.",
            on_resume="free",
        ),
    )
    gradient_checkpointing: bool = field(
        default=False,
        metadata=opt(
            "Recompute activations in the backward pass instead of keeping them: about a third "
            "more compute for much less activation memory; for batches that do not fit.",
            on_resume="free",
        ),
    )
