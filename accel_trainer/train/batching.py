"""How examples become batches: the training order (shuffled, length-grouped or token-budget),
the fixed order of inference, and the micro-batches that make up each optimizer step."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import TYPE_CHECKING

from torch.utils.data import DataLoader

from accel_trainer.errors import InputError
from accel_trainer.sampling import LengthGroupedSampler, TokenBudgetBatchSampler

if TYPE_CHECKING:
    from datasets import Dataset

    from accel_trainer.config import TrainConfig


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
