"""The batching options (TrainConfig.batching), read by batching.py: examples per micro-batch
and per optimizer step, the loss normalisation and the layout of each step's examples."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

from accel_trainer.config.checks import (
    MAX_COUNT,
    did_you_mean,
    opt,
    positive_problems,
    upper_bound_problems,
)
from accel_trainer.config.options import OptionGroup
from accel_trainer.errors import ConfigError


@dataclass
class EvalBatchingOptions(OptionGroup):
    """How many examples an evaluation batch holds."""

    title: ClassVar[str] = "batching"

    per_device_eval_batch_size: int = field(
        default=32, metadata=opt("Eval batch per process.", on_resume="free")
    )

    def problems(self) -> list[str]:
        found = super().problems()
        if self.per_device_eval_batch_size <= 0:
            found.append(
                "--per_device_eval_batch_size must be positive: "
                f"got {self.per_device_eval_batch_size}. Use e.g. 32."
            )
        return found + upper_bound_problems(self, {"per_device_eval_batch_size": MAX_COUNT})


LOSS_NORMALIZATIONS = ("global", "batch")
# How a step's examples are laid out for computing; auto: the fastest exact one the model takes.
BATCH_LAYOUTS = ("auto", "packed", "sorted", "padded")
MAX_MICRO_BATCH_TOKENS = 2**24


@dataclass
class BatchingOptions(EvalBatchingOptions):
    """How an optimizer step's examples are split into micro-batches and laid out."""

    per_device_train_batch_size: int = field(
        default=16, metadata=opt("Train batch per process.", on_resume="topology")
    )
    gradient_accumulation_steps: int = field(
        default=1, metadata=opt("Micro-batches per optimizer step.", on_resume="topology")
    )
    global_batch_size: int = field(
        default=0,
        metadata=opt(
            "Examples per optimizer step over all processes (instead of "
            "--gradient_accumulation_steps): accumulation = this / (per-device batch x processes).",
            on_resume="topology",
        ),
    )
    group_by_length: bool = field(
        default=False,
        metadata=opt(
            "Fill each optimizer step with examples of similar length (sorted within shuffled "
            "groups of 50 global batches): about half the padding of random batches on "
            "sentence data, so faster, and the same on any topology; but each step's examples "
            "are no longer a random sample, which can change what the model learns (see "
            "docs/batching.md)."
        ),
    )
    max_tokens_per_batch: int = field(
        default=0,
        metadata=opt(
            "Fill each training micro-batch up to this many padded tokens (longest example x "
            "examples), instead of --per_device_train_batch_size examples: the GPU memory "
            "knob. Changes the examples per step, so it changes what the model learns. 0: off."
        ),
    )
    loss_normalization: str = field(
        default="global",
        metadata=opt(
            "global: each step's loss is the summed cross-entropy over the whole global batch "
            "divided by its labelled positions (tokens for NER, examples for RE), the same on "
            "any topology. batch: the mean of each micro-batch, averaged (the transformers "
            "default).",
        ),
    )
    batch_layout: str = field(
        default="auto",
        metadata=opt(
            "How each step's examples are laid out for computing; never which examples form the "
            "step. packed: each micro-batch's sentences in one row without padding, attention "
            "kept within each sentence (token classification on models that use transformers' "
            "attention interface). sorted: the step's examples sorted by length into micro-"
            "batches of at most --micro_batch_tokens padded tokens. padded: each micro-batch "
            "padded to its longest example. auto: packed, else sorted, else padded. All give "
            "the padded layout's gradient up to float rounding (sorted needs "
            "--loss_normalization global).",
            choices=list(BATCH_LAYOUTS),
            on_resume="free",
        ),
    )
    micro_batch_tokens: int = field(
        default=0,
        metadata=opt(
            "The sorted layout's budget of padded tokens (longest example x examples) per "
            "micro-batch. 0: on a GPU 4096; on a CPU 256 for models of MiniLM's size (22.7M "
            "parameters) or larger, and proportionally more for smaller ones, whose per-call "
            "overhead outweighs the padding.",
            on_resume="free",
        ),
    )

    def problems(self) -> list[str]:
        found = super().problems()
        found += self.layout_problems()
        if self.loss_normalization == "tokens":  # what `global` was called before
            found.append(
                "--loss_normalization tokens is now called global: got 'tokens'. Use "
                "--loss_normalization global (the default)."
            )
        elif self.loss_normalization not in LOSS_NORMALIZATIONS:
            found.append(
                f"--loss_normalization is not one of {list(LOSS_NORMALIZATIONS)}: got "
                f"{self.loss_normalization!r}."
                f"{did_you_mean(str(self.loss_normalization), LOSS_NORMALIZATIONS)}"
            )
        found += positive_problems(
            self, ("per_device_train_batch_size", "gradient_accumulation_steps")
        )
        found += upper_bound_problems(
            self,
            {
                "per_device_train_batch_size": MAX_COUNT,
                "gradient_accumulation_steps": MAX_COUNT,
                "global_batch_size": MAX_COUNT,
            },
        )
        if self.global_batch_size < 0:
            found.append(f"--global_batch_size cannot be negative: got {self.global_batch_size}.")
        elif self.global_batch_size and self.gradient_accumulation_steps != 1:
            found.append(
                "--global_batch_size and --gradient_accumulation_steps are both set: got "
                f"{self.global_batch_size} and {self.gradient_accumulation_steps}. Give only one; "
                "the accumulation is derived from the global batch."
            )
        if self.max_tokens_per_batch < 0:
            found.append(
                f"--max_tokens_per_batch cannot be negative: got {self.max_tokens_per_batch}."
            )
        elif self.max_tokens_per_batch and self.global_batch_size:
            found.append(token_budget_problem("global_batch_size"))
        return found

    def layout_problems(self) -> list[str]:
        found = []
        if self.batch_layout == "sorted" and self.loss_normalization == "batch":
            found.append(
                "--batch_layout sorted needs --loss_normalization global: got batch, whose "
                "per-micro-batch means change when examples move between micro-batches. Use "
                "--batch_layout packed or padded, or --loss_normalization global."
            )
        if not 0 <= self.micro_batch_tokens <= MAX_MICRO_BATCH_TOKENS:
            found.append(
                f"--micro_batch_tokens must be in [0, {MAX_MICRO_BATCH_TOKENS}]: got "
                f"{self.micro_batch_tokens}. 0 picks a budget for the device."
            )
        elif self.micro_batch_tokens and self.batch_layout in ("packed", "padded"):
            found.append(
                f"--micro_batch_tokens is the sorted layout's budget: got "
                f"{self.micro_batch_tokens} with --batch_layout {self.batch_layout}. Drop it, or "
                "use --batch_layout sorted or auto."
            )
        return found

    def resolved_micro_batch_tokens(self, device_type: str, parameters: int) -> int:
        if self.micro_batch_tokens:
            return self.micro_batch_tokens
        if device_type == "cuda":
            return 4096
        # Measured on a 2-core CPU with MiniLM (bench/step_breakdown.py): 256 padded tokens.
        return round(256 * max(1.0, 22.7e6 / max(parameters, 1)))

    def resolved_accumulation_steps(self, world_size: int) -> int:
        """Micro-batches per optimizer step on `world_size` processes."""
        if not self.global_batch_size:
            return self.gradient_accumulation_steps
        per_micro_step = self.per_device_train_batch_size * world_size
        if self.global_batch_size % per_micro_step:
            raise ConfigError(
                f"--global_batch_size {self.global_batch_size} is not a multiple of "
                f"--per_device_train_batch_size {self.per_device_train_batch_size} x "
                f"{world_size} process(es) = {per_micro_step}. Choose a global batch that is, or "
                "another per-device batch."
            )
        return self.global_batch_size // per_micro_step


def token_budget_problem(option: str) -> str:
    return (
        f"--max_tokens_per_batch and --{option} cannot be combined: token-budget batches hold a "
        "varying number of examples, so there is no fixed global batch. Drop one of them."
    )
