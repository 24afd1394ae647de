"""One optimizer step: forward/backward over its micro-batches (gradients synchronised on the
last only), the loss scaled for --loss_normalization, clipping, and the non-finite guard (its
count of skipped steps, and the stop when they repeat)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch
from accelerate import Accelerator
from accelerate.logging import get_logger

from accel_trainer.errors import Diverged
from accel_trainer.tasks.base import IGNORE_INDEX, META_KEYS

if TYPE_CHECKING:
    from accel_trainer.train.state import TrainState

logger = get_logger(__name__)


@dataclass
class StepOutcome:
    """What one optimizer step did."""

    grad_norm: float
    skipped: bool  # a NaN/inf gradient: no update on any process
    updated: bool  # the weights changed (not skipped, and no fp16 overflow)
    learning_rate: float  # the rate this step used
    micro_batches: int  # of this process, as the loader gave them
    examples: int  # consumed by this process


# The batch key of the gold labels: transformers' collators rename a dataset's `label` to it.
LABELS = "labels"


def model_inputs(batch: dict, with_labels: bool = True) -> dict:
    """The batch as model keyword arguments; without the labels the model skips its own
    (per-batch mean) loss."""
    skipped = META_KEYS if with_labels else (*META_KEYS, LABELS)
    return {key: value for key, value in batch.items() if key not in skipped}


def summed_cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Cross-entropy summed over the labelled positions (tokens or examples), in float32."""
    return torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="sum",
    )


class OptimizerStep:
    """Runs optimizer steps on a prepared model, optimizer and scheduler; keeps this process's
    loss and token sums on the device until `take_totals` (one all-reduce per log record)."""

    def __init__(
        self,
        accelerator: Accelerator,
        model,
        optimizer,
        scheduler,
        accumulation_steps: int,
        loss_normalization: str,
        max_grad_norm: float,
        layout=None,
    ):
        """`layout`: how the step's examples are laid out for computing (train/batching.py);
        None: as the loader gives them."""
        self.accelerator = accelerator
        self.layout = layout
        self.model, self.optimizer, self.scheduler = model, optimizer, scheduler
        self.accumulation_steps = accumulation_steps
        self.normalize_globally = loss_normalization == "global"
        self.max_grad_norm = max_grad_norm or float("inf")  # 0: only measure the norm
        # The loss is scaled here, for the whole step: not again by DeepSpeed.
        deepspeed = accelerator.distributed_type.value == "DEEPSPEED"
        self.backward_options = {"scale_wrt_gas": False} if deepspeed else {}
        # Sharded parameters are gathered in every forward: all processes must run as many.
        self.same_passes_everywhere = accelerator.num_processes > 1 and (
            accelerator.distributed_type.value in ("FSDP", "DEEPSPEED")
        )
        # TOTALS_FIELDS of this process: over every step (row 0, for the log, which shows a
        # skipped step's NaN) and over the steps that updated the weights (row 1, the run's).
        self._totals = torch.zeros(2, 4, device=accelerator.device)

    def run(self, micro_batches: list[dict]) -> StepOutcome:
        """Forward and backward over the step's micro-batches (the loader's, laid out by the
        layout), then clip and update, unless the gradient is not finite."""
        learning_rate = self.optimizer.param_groups[0]["lr"]
        examples = sum(batch[LABELS].shape[0] for batch in micro_batches)
        loaded = len(micro_batches)
        if self.layout is not None:
            micro_batches = self.layout.arrange(micro_batches)
        counted = len(micro_batches)
        if self.same_passes_everywhere:
            micro_batches = self._with_empty_passes(micro_batches)
        labelled = [(batch[LABELS] != IGNORE_INDEX).sum() for batch in micro_batches]
        step_labelled = None
        if self.normalize_globally:
            # Counted before the first backward: every process must divide by the same total.
            step_labelled = self.accelerator.reduce(torch.stack(labelled).sum(), "sum")
        last = len(micro_batches) - 1
        step_totals = torch.zeros(4, device=self._totals.device)
        for index, (batch, count) in enumerate(zip(micro_batches, labelled, strict=True)):
            # DeepSpeed runs its optimizer step inside the backward that syncs: the last one.
            self.accelerator.sync_gradients = index == last
            if index < last:
                with self.accelerator.no_sync(self.model):
                    totals = self._forward_backward(batch, count, step_labelled)
            else:  # gradients are averaged over processes on this backward
                totals = self._forward_backward(batch, count, step_labelled)
            if index < counted:  # not an empty pass
                step_totals += totals
        grad_norm = self.accelerator.clip_grad_norm_(self.model.parameters(), self.max_grad_norm)
        # DeepSpeed clipped inside its step already, and reports the norm as a float.
        grad_norm = torch.as_tensor(grad_norm)
        # Averaged over processes by now, so every process sees the same norm: a NaN or inf on
        # any of them skips this step on all. (fp16's gradient scaler handles its overflows.)
        skipped = not bool(torch.isfinite(grad_norm)) and self.accelerator.scaler is None
        updated = False
        if not skipped:
            self.optimizer.step()
            updated = not self.accelerator.optimizer_step_was_skipped  # an fp16 overflow
            if updated:
                self.scheduler.step()
        self.optimizer.zero_grad()
        self._totals[0] += step_totals
        if not skipped:
            self._totals[1] += step_totals
        return StepOutcome(float(grad_norm), skipped, updated, learning_rate, loaded, examples)

    def _with_empty_passes(self, micro_batches: list[dict]) -> list[dict]:
        """The micro-batches, plus passes that learn nothing (the last one again, without
        labels) up to the most any process has this step: token budgets and the sorted layout
        give processes their own numbers of micro-batches."""
        count = torch.tensor(len(micro_batches), device=self.accelerator.device)
        most = int(self.accelerator.reduce(count, "max"))
        if most == len(micro_batches):
            return micro_batches
        empty = dict(micro_batches[-1])  # packed rows keep their boundaries: not sliced
        empty[LABELS] = torch.full_like(empty[LABELS], IGNORE_INDEX)
        return micro_batches + [empty] * (most - len(micro_batches))

    def _forward_backward(self, batch: dict, labelled, step_labelled) -> torch.Tensor:
        """One micro-batch's forward and backward; returns its sums in TOTALS_FIELDS order."""
        logits = self.model(**model_inputs(batch, with_labels=False)).logits
        loss_sum = summed_cross_entropy(logits, batch[LABELS])
        self.accelerator.backward(
            self._scaled(loss_sum, labelled, step_labelled), **self.backward_options
        )
        if step_labelled is None:  # logged: the batch mean and 1, or the sum and its count
            logged = (loss_sum.detach() / labelled.clamp(min=1), 1.0)
        else:
            logged = (loss_sum.detach(), labelled.float())
        mask = batch.get("attention_mask")
        if mask is None:
            mask = torch.ones_like(batch["input_ids"])
        values = (*logged, mask.sum(), mask.numel())
        device = self._totals.device
        return torch.stack([torch.as_tensor(v, dtype=torch.float32, device=device) for v in values])

    def _scaled(self, loss_sum, labelled, step_labelled) -> torch.Tensor:
        """The loss to back-propagate so that the accumulated, process-averaged gradient is the
        one --loss_normalization asks for."""
        if step_labelled is None:  # batch: the mean of each micro-batch's mean, as HF does
            return loss_sum / labelled.clamp(min=1) / self.accumulation_steps
        # global: data parallelism averages over processes; undo it so that the gradient is the
        # sum over the global batch divided by its labelled count.
        return loss_sum * self.accelerator.num_processes / step_labelled.clamp(min=1)

    def take_totals(self) -> tuple[list[float], list[float]]:
        """The sums since the last call, added over all processes: over every step, and over
        the steps that updated the weights (one all-reduce)."""
        totals = self.accelerator.reduce(self._totals, reduction="sum").tolist()
        self._totals.zero_()
        return totals[0], totals[1]


def count_nonfinite_step(
    state: TrainState, grad_norm: float, max_nonfinite_steps: int, output_dir: str, log
) -> None:
    """A skipped step (NaN/inf loss or gradient): count it, `log` its record, stop (Diverged)
    when they repeat beyond --max_nonfinite_steps."""
    state.nonfinite_steps += 1
    state.consecutive_nonfinite += 1
    step = state.step + 1
    logger.warning(
        "step %d skipped: non-finite gradient norm %s (%d skipped in all, %d in a row); "
        "weights, optimizer and learning rate unchanged",
        step,
        grad_norm,
        state.nonfinite_steps,
        state.consecutive_nonfinite,
    )
    log({"step": step, "nonfinite_steps": state.nonfinite_steps})
    if state.consecutive_nonfinite > max_nonfinite_steps:
        raise Diverged(
            f"training diverged: {state.consecutive_nonfinite} optimizer steps in a row "
            f"up to step {step} had a NaN or inf loss or gradient (--max_nonfinite_steps "
            f"{max_nonfinite_steps}). The last committed checkpoint in "
            f"{output_dir} is intact: check the data, or train again in another "
            "--output_dir with a lower --learning_rate."
        )
