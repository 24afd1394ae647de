"""How examples become batches: the training order (shuffled, length-grouped or token-budget),
the fixed order of inference, the micro-batches that make up each optimizer step, and how a
step's examples are laid out for computing (padded, sorted by length, or packed)."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from accel_trainer.errors import ConfigError, InputError
from accel_trainer.lora import parameter_counts
from accel_trainer.tasks.base import IGNORE_INDEX, META_KEYS
from accel_trainer.train.packing import PACKED_ATTENTION, pack, packing_refusal, position_offset
from accel_trainer.train.sampling import LengthGroupedSampler, TokenBudgetBatchSampler
from accel_trainer.train.step import LABELS

if TYPE_CHECKING:
    from datasets import Dataset

    from accel_trainer.config import TrainConfig
    from accel_trainer.train.batching_options import BatchingOptions


def with_row_ids(data: Dataset) -> Dataset:
    """The dataset with a `row_id` column: gathered predictions are put back in dataset order
    on any number of processes, and each training step can name the examples it consumed."""
    if "row_id" in data.column_names:
        return data
    return data.add_column("row_id", list(range(len(data))))


def check_label_column(data: Dataset | DataLoader | None, label_key: str, what: str) -> None:
    """Fail early when a dataset is no dataset, is empty or lacks the task's gold label column;
    `what` names the argument."""
    if data is None or isinstance(data, DataLoader):
        return
    columns = getattr(data, "column_names", None)
    if columns is None:
        raise InputError(
            f"{what} is not a datasets.Dataset or a DataLoader: got {type(data).__name__}. "
            "Tokenize your data with the task (task.tokenize), or use AccelerateTrainer.from_files."
        )
    if label_key not in columns or "input_ids" not in columns:
        raise InputError(
            f"{what} has no {label_key!r} and 'input_ids' columns: got columns {columns}. "
            "Tokenize it with the task so that each example carries its gold label."
        )
    if len(data) == 0:
        raise InputError(f"{what} is empty: got 0 rows. Give it at least one example.")


def inference_loader(data: Dataset, collate, batch_size: int, pin_memory: bool) -> DataLoader:
    """Longest first: similar lengths share a batch, and a batch too large for memory fails at
    once. Gathered rows are put back in dataset order by row_id."""
    data = with_row_ids(data)
    lengths = [len(ids) for ids in data["input_ids"]]
    order = sorted(range(len(lengths)), key=lambda i: -lengths[i])
    return DataLoader(
        data, batch_size=batch_size, sampler=order, collate_fn=collate, pin_memory=pin_memory
    )


class TrainBatches:
    """The training data loader and the sampler whose epoch the loop sets (a token-budget batch
    sampler or a length-grouped sampler; None for plain shuffling, seeded by Accelerate)."""

    def __init__(
        self,
        data: Dataset,
        collate,
        config: TrainConfig,
        num_processes: int,
        accumulation_steps: int,
        pin_memory: bool,
    ):
        self.sampler = None
        if isinstance(data, DataLoader):  # the caller's own: used as it is
            self.loader = data
            return
        data = with_row_ids(data)
        lengths = [len(ids) for ids in data["input_ids"]]
        options = {"collate_fn": collate, "pin_memory": pin_memory}
        if config.batching.max_tokens_per_batch:
            self.sampler = TokenBudgetBatchSampler(
                lengths, config.batching.max_tokens_per_batch, config.runtime.seed
            )
            self.loader = DataLoader(data, batch_sampler=self.sampler, **options)
            return
        batch_size = config.batching.per_device_train_batch_size
        if config.batching.group_by_length:
            global_batch = batch_size * num_processes * accumulation_steps
            self.sampler = LengthGroupedSampler(lengths, global_batch, config.runtime.seed)
        self.loader = DataLoader(
            data, batch_size=batch_size, shuffle=self.sampler is None, sampler=self.sampler,
            **options,
        )  # fmt: skip


def step_groups(batches: Iterable[dict], accumulation_steps: int) -> Iterator[list[dict]]:
    """The micro-batches of each optimizer step, as lists; an epoch's last may be short."""
    group: list[dict] = []
    for batch in batches:
        group.append(batch)
        if len(group) == accumulation_steps:
            yield group
            group = []
    if group:
        yield group


class PaddedLayout:
    """The loader's micro-batches as they are: each padded to its own longest example."""

    name = "padded"

    @contextmanager
    def computing(self, model):
        """While the layout's batches are computed: the model as it is."""
        yield

    def arrange(self, micro_batches: list[dict]) -> list[dict]:
        return micro_batches


class SortedLayout(PaddedLayout):
    """The step's examples (all its micro-batches on this process) sorted by length and split
    into micro-batches of at most `token_budget` padded tokens, each padded to its own longest.
    The step's loss is normalised over the whole step, so the gradient is the padded one."""

    name = "sorted"

    def __init__(self, token_budget: int, pad_token_id: int):
        self.token_budget = token_budget
        # Padding that no computation sees; labels and word positions are ignored (-100).
        self.pad_values = {"input_ids": pad_token_id, LABELS: IGNORE_INDEX}
        self.pad_values.update(dict.fromkeys(META_KEYS, IGNORE_INDEX))

    def arrange(self, micro_batches: list[dict]) -> list[dict]:
        joined = self._joined([with_attention_mask(batch) for batch in micro_batches])
        mask = joined["attention_mask"]
        lengths = mask.sum(dim=1).tolist()
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        # Never more padded tokens per forward than the loader's own micro-batches hold: the
        # memory a user sized with the batch size, accumulation or --max_tokens_per_batch.
        loaded = max(batch["attention_mask"].numel() for batch in micro_batches)
        groups = list(self._groups(order, lengths, min(self.token_budget, loaded)))
        if len(groups) == 1 and len(micro_batches) == 1:
            return micro_batches  # the same padding: keep the loader's order, and its dropout
        arranged = []
        for group in groups:
            index = torch.tensor(group, device=mask.device)
            longest = max(lengths[group[0]], 1)
            arranged.append(
                {
                    key: value[index][:, :longest] if self._per_token(value, mask) else value[index]
                    for key, value in joined.items()
                }
            )
        return arranged

    @staticmethod
    def _groups(order: list[int], lengths: list[int], budget: int) -> Iterator[list[int]]:
        """Longest first; a group grows while its padded tokens stay within the budget."""
        group: list[int] = []
        for index in order:
            if group and (len(group) + 1) * lengths[group[0]] > budget:
                yield group
                group = []
            group.append(index)
        if group:
            yield group

    def _joined(self, micro_batches: list[dict]) -> dict:
        """The micro-batches as one batch, per-token values padded to the longest."""
        longest = max(batch["attention_mask"].shape[1] for batch in micro_batches)
        joined = {}
        for key in micro_batches[0]:
            parts = []
            for batch in micro_batches:
                value = batch[key]
                examples = batch["attention_mask"].shape[0]
                if (
                    not isinstance(value, torch.Tensor)
                    or value.dim() == 0
                    or len(value) != examples
                ):
                    raise ConfigError(
                        f"--batch_layout sorted cannot split the batch key {key!r}: got a "
                        f"{type(value).__name__}, not a tensor with a row per example. Use "
                        "--batch_layout padded."
                    )
                if self._per_token(value, batch["attention_mask"]):
                    padding = (0, longest - value.shape[1])
                    value = F.pad(value, padding, value=self.pad_values.get(key, 0))
                parts.append(value)
            joined[key] = torch.cat(parts)
        return joined

    @staticmethod
    def _per_token(value: torch.Tensor, mask: torch.Tensor) -> bool:
        return value.dim() == 2 and value.shape == mask.shape


class PackedLayout(PaddedLayout):
    """Each micro-batch as one packed row (see train/packing.py): no padding at all. The model
    computes with the packed attention while `computing` is entered (training), only."""

    name = "packed"

    def __init__(self, position_offset: int):
        self.position_offset = position_offset

    @contextmanager
    def computing(self, model):
        original = model.config._attn_implementation
        model.set_attn_implementation(PACKED_ATTENTION)
        try:
            yield
        finally:
            model.set_attn_implementation(original)

    def arrange(self, micro_batches: list[dict]) -> list[dict]:
        return [pack(with_attention_mask(batch), self.position_offset) for batch in micro_batches]


def with_attention_mask(batch: dict) -> dict:
    """The batch with an attention mask: without one, every position is a real token."""
    if "attention_mask" in batch:
        return batch
    return {**batch, "attention_mask": torch.ones_like(batch["input_ids"])}


BatchLayout = PaddedLayout | SortedLayout | PackedLayout


def choose_layout(
    batching: BatchingOptions, token_level_labels: bool, model, tokenizer, device_type: str
) -> tuple[BatchLayout, str]:
    """The layout --batch_layout asks for, or under auto the fastest exact one the task, model
    and tokenizer allow; and why, for the log."""
    requested = batching.batch_layout
    left_padded = getattr(tokenizer, "padding_side", "right") == "left"
    if left_padded and requested in ("packed", "sorted"):
        raise ConfigError(
            f"--batch_layout {requested} needs a tokenizer that pads on the right: got "
            "padding_side 'left', with which a model counting positions from the first column "
            "(BERT) sees each token's position shift with its batch's padding. Use "
            "--batch_layout padded or auto."
        )
    budget_note = ""
    if batching.micro_batch_tokens:
        budget_note = f"; --micro_batch_tokens {batching.micro_batch_tokens} applies to sorted only"
    refusal = "the tokenizer pads on the left" if left_padded else None
    if requested in ("auto", "packed") and refusal is None:
        refusal = packing_problem(token_level_labels, model)
        if refusal is None:
            return PackedLayout(
                position_offset(model)
            ), f"packed: one row per micro-batch{budget_note}"
        if requested == "packed":
            raise ConfigError(
                f"--batch_layout packed is not possible here: {refusal}. Use --batch_layout "
                "auto, which falls back to sorted micro-batches."
            )
    not_packed = "" if refusal is None else f" (not packed: {refusal})"
    exact_sort = batching.loss_normalization == "global" and not left_padded
    if requested == "sorted" or (requested == "auto" and exact_sort):
        parameters = parameter_counts(model)[1]
        budget = batching.resolved_micro_batch_tokens(device_type, parameters)
        layout = SortedLayout(budget, tokenizer.pad_token_id or 0)
        return layout, (
            f"sorted: micro-batches of at most {budget} padded tokens, and never more than the "
            f"loader's{not_packed}"
        )
    if requested == "auto" and not left_padded:
        not_packed += " (not sorted: --loss_normalization batch)"
    return PaddedLayout(), f"padded{not_packed}{budget_note}"


def check_layout_request(batching: BatchingOptions, token_level_labels: bool) -> None:
    """Refuse --batch_layout packed for a task with a label per example, before any data."""
    if batching.batch_layout == "packed" and not token_level_labels:
        raise ConfigError(
            f"--batch_layout packed is not possible here: {packing_problem(False, None)}. Use "
            "--batch_layout auto (sorted micro-batches) or sorted."
        )


def packing_problem(token_level_labels: bool, model) -> str | None:
    """Why this task and model cannot be packed, or None."""
    if not token_level_labels:
        return (
            "the task does not predict a label per token (Task.token_level_labels), and a "
            "packed row cannot pool one prediction per example"
        )
    return packing_refusal(model)
