"""The one inference path, shared by the trainer's evaluations and the evaluate and predict
commands: every row once, gathered from all processes, in dataset order."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from accelerate import Accelerator
from accelerate.logging import get_logger
from torch.utils.data import DataLoader

from accel_trainer.runtime import fit_fsdp_wrapping, prepare_sharded
from accel_trainer.tasks.base import IGNORE_INDEX, META_KEYS
from accel_trainer.train.batching import inference_loader
from accel_trainer.train.step import LABELS, model_inputs

if TYPE_CHECKING:
    from datasets import Dataset

    from accel_trainer.tasks.base import Task

logger = get_logger(__name__)


class Inference:
    """Runs a model (prepared once here, unless `prepared`) over tokenized datasets."""

    def __init__(
        self,
        accelerator: Accelerator,
        model,
        tokenizer,
        task: Task,
        batch_size: int,
        prepared: bool = False,
    ):
        self.accelerator = accelerator
        if not prepared:
            fit_fsdp_wrapping(accelerator, model)
            model = prepare_sharded(accelerator, model)
        self.model = model
        self.task = task
        self.collate = task.collator(tokenizer)
        self.batch_size = batch_size
        config = accelerator.unwrap_model(self.model).config
        self.id2label = {int(i): label for i, label in config.id2label.items()}

    def loader(self, data: Dataset | DataLoader) -> DataLoader:
        """A prepared, unshuffled loader over `data` (every process a shard); a DataLoader of
        the caller's is prepared as it is."""
        if not isinstance(data, DataLoader):
            pin = self.accelerator.device.type == "cuda"
            data = inference_loader(data, self.collate, self.batch_size, pin)
        return self.accelerator.prepare(data)

    def evaluate(self, loader: DataLoader) -> dict:
        """Metrics over every example exactly once, whatever the number of processes."""
        rows = self.rows(loader)
        # Every process holds all predictions, so each computes the same metrics; no broadcast.
        metrics = self.task.compute_metrics(
            rows["predictions"], rows["labels"], self.id2label, rows.get("example_id")
        )
        warn_if_collapsed(rows["predictions"], rows["labels"], self.id2label)
        metrics["loss"] = rows["loss_sum"] / max(rows["loss_count"], 1)
        ids = rows.get("example_id", rows.get("row_id"))
        metrics["samples"] = len(set(map(int, ids))) if ids else len(rows["predictions"])
        return {f"eval_{name}": value for name, value in metrics.items()}

    def predict(self, data: Dataset) -> dict[str, list]:
        """Per-row predictions, confidences and bookkeeping columns, in dataset order, on every
        process."""
        return self.rows(self.loader(data))

    # no_grad, not inference_mode: FSDP2 keeps the buffers its all-gathers fill, and a
    # training step cannot write into tensors made in inference mode.
    @torch.no_grad()
    def rows(self, loader: DataLoader) -> dict:
        """Run the model over an unshuffled loader and gather every row once, in order."""
        accelerator = self.accelerator
        was_training = self.model.training
        self.model.eval()
        rows: dict = {"loss_sum": 0.0, "loss_count": 0}
        for batch in loader:
            inputs = model_inputs(batch)
            logits = self.model(**inputs).logits
            confidence, predicted = logits.float().softmax(dim=-1).max(dim=-1)
            tensors = {"predictions": predicted, "confidence": confidence}
            tensors.update({key: batch[key] for key in META_KEYS if key in batch})
            if LABELS in inputs:
                tensors["labels"] = inputs[LABELS]
                tensors["loss_sum"], tensors["loss_count"] = per_example_loss(
                    logits, inputs[LABELS]
                )
            if predicted.ndim > 1:  # token tasks: sequence lengths differ between processes
                tensors = {
                    key: accelerator.pad_across_processes(value, 1, IGNORE_INDEX)
                    if value.ndim > 1
                    else value
                    for key, value in tensors.items()
                }
            for key, value in accelerator.gather_for_metrics(tensors).items():
                if key.startswith("loss_"):
                    rows[key] += value.sum().item()
                else:
                    rows.setdefault(key, []).extend(value.cpu().numpy())
        self.model.train(was_training)
        if "row_id" in rows:  # absent only for a caller's own dataloader
            order = np.argsort(np.asarray(rows["row_id"]), kind="stable")
            for key, value in rows.items():
                if isinstance(value, list):
                    rows[key] = [value[i] for i in order]
        return rows


def warn_if_collapsed(predictions: list, labels: list, id2label: dict[int, str]) -> None:
    """Say so when every scored prediction is one label while the gold labels are several: the
    model does not tell the labels apart, and F1 over the others is 0."""
    predicted, gold = set(), set()
    for prediction, label in zip(predictions, labels, strict=True):
        label = np.asarray(label).ravel()
        scored = label != IGNORE_INDEX
        predicted.update(np.asarray(prediction).ravel()[scored].tolist())
        gold.update(label[scored].tolist())
    if len(predicted) == 1 and len(gold) > 1:
        logger.warning(
            "evaluation: the model predicts %r for everything, while the data has %d labels: "
            "it does not tell them apart (F1 over the others is 0). Train longer or with "
            "another learning rate, or check the training labels.",
            id2label.get(next(iter(predicted))),
            len(gold),
        )


def per_example_loss(logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """Summed cross-entropy and the number of labelled positions, per example."""
    losses = torch.nn.functional.cross_entropy(
        logits.float().reshape(-1, logits.shape[-1]),
        labels.reshape(-1),
        ignore_index=IGNORE_INDEX,
        reduction="none",
    ).view(labels.shape)
    counts = (labels != IGNORE_INDEX).long()
    if labels.ndim > 1:
        return losses.sum(dim=1), counts.sum(dim=1)
    return losses, counts


def format_metrics(metrics: dict) -> str:
    return ", ".join(
        f"{name}={value:.4f}" if isinstance(value, float) else f"{name}={value}"
        for name, value in metrics.items()
    )
