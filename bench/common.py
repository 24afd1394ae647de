"""What every contender of the benchmark shares: the data, read and tokenized the same way, the
model, and the scoring, so that only the training loop differs."""

from __future__ import annotations

import json
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from accel_trainer.models import load_pretrained  # noqa: E402
from accel_trainer.tasks import NerTask  # noqa: E402

TRAIN_FILE, DEV_FILE = "train.tsv", "devel.tsv"


def add_arguments(parser) -> None:
    """The options every contender takes, with the same meaning."""
    parser.add_argument("--data", required=True, help="folder with train.tsv and devel.tsv")
    parser.add_argument("--model", required=True, help="pretrained model folder")
    parser.add_argument("--max_steps", type=int, default=60, help="0: run --epochs instead")
    parser.add_argument("--epochs", type=int, default=1, help="passes when --max_steps is 0")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--max_seq_length", type=int, default=128)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--group_by_length", action="store_true")
    parser.add_argument("--bf16", action="store_true", help="on the GPU, bf16 autocast")
    parser.add_argument("--results", required=True, help="JSON file to write")


def device_for(args) -> torch.device:
    return torch.device("cuda" if args.bf16 else "cpu")


def peak_gpu_memory_mb() -> float | None:
    if not torch.cuda.is_available():
        return None
    return torch.cuda.max_memory_allocated() / 2**20


def prepare(args):
    """(task, model, tokenizer, tokenized train, tokenized dev)."""
    task = NerTask()
    train_raw = task.read(os.path.join(args.data, TRAIN_FILE), "train", "conll")
    dev_raw = task.read(os.path.join(args.data, DEV_FILE), "dev", "conll")
    labels = task.label_list(train_raw)
    model, tokenizer = load_pretrained("AutoModelForTokenClassification", args.model, labels)
    label2id = model.config.label2id
    train = task.tokenize(train_raw, tokenizer, label2id, args.max_seq_length, True)
    dev = task.tokenize(dev_raw, tokenizer, label2id, args.max_seq_length, False)
    return task, model, tokenizer, train, dev


@torch.inference_mode()
def dev_f1(task, model, tokenizer, dev, batch_size: int = 64) -> float:
    """Entity-level F1 on the dev set, scored the way accel-trainer scores it."""
    collate = task.collator(tokenizer)
    model.eval()
    device = next(model.parameters()).device
    predictions, labels, example_ids = [], [], []
    for start in range(0, len(dev), batch_size):
        batch = collate([dev[i] for i in range(start, min(start + batch_size, len(dev)))])
        inputs = {key: batch[key].to(device) for key in ("input_ids", "attention_mask")}
        logits = model(**inputs).logits
        predictions.extend(logits.argmax(-1).cpu().numpy())
        labels.extend(batch["labels"].numpy())
        example_ids.extend(batch["example_id"].tolist())
    return task.compute_metrics(predictions, labels, model.config.id2label, example_ids)["f1"]


def write_results(path: str, **values) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(values, handle, indent=2)
