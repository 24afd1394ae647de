"""Where one optimizer step's time goes with each batch layout: forward and backward of the same
random batches (padded, sorted micro-batches, packed), and the AdamW update that no layout
changes. It shows what keeps packing from the speed-up that the padding alone would allow.

  python bench/step_breakdown.py --data ../shared/data/ncbi_disease --batches 8
  python bench/step_breakdown.py --task re --data \
    ../shared/data/semeval2010_task8/SemEval2010_task8_training/TRAIN_FILE.TXT --batches 8

Uses accel-trainer's own layouts (accel_trainer/train/batching.py) on MiniLM, dropout off."""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from compare import minilm_folder  # noqa: E402

from accel_trainer.config import TrainConfig  # noqa: E402
from accel_trainer.models import load_pretrained  # noqa: E402
from accel_trainer.tasks import NerTask, task_for_training  # noqa: E402
from accel_trainer.tasks.base import MetaCollator  # noqa: E402
from accel_trainer.train.batching import PackedLayout, PaddedLayout, SortedLayout  # noqa: E402
from accel_trainer.train.packing import PACKED_ATTENTION, register_packed_attention  # noqa: E402
from accel_trainer.train.step import LABELS, model_inputs, summed_cross_entropy  # noqa: E402


def read_task(args):
    """The task and its raw training data: NER from DATA/train.tsv, RE from the file DATA."""
    if args.task == "ner":
        task = NerTask()
        return task, task.read(os.path.join(args.data, "train.tsv"), "train", "conll")
    task = task_for_training("re", TrainConfig.from_options(task="re").task_options)
    return task, task.read(args.data, "train", "semeval2010")


def random_batches(args, task, raw, tokenizer, label2id) -> list[dict]:
    data = task.tokenize(raw, tokenizer, label2id, 128, True)
    collate = MetaCollator(task.collator(tokenizer), tokenizer)
    order = list(range(len(data)))
    random.Random(args.seed).shuffle(order)
    size = args.batch_size
    chunks = [order[k * size : (k + 1) * size] for k in range(args.batches)]
    return [collate([data[i] for i in chunk]) for chunk in chunks]


def forward_backward_seconds(model, micro_batches: list[dict]) -> float:
    started = time.perf_counter()
    for batch in micro_batches:
        logits = model(**model_inputs(batch, with_labels=False)).logits
        summed_cross_entropy(logits, batch[LABELS]).backward()
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="NER folder with train.tsv; RE: a file")
    parser.add_argument("--task", default="ner", choices=["ner", "re"])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--output", default=os.path.join(os.path.dirname(__file__), "results",
                                                         "step_breakdown"))  # fmt: skip
    args = parser.parse_args()
    task, raw = read_task(args)
    model, tokenizer = load_pretrained(
        task.auto_model_class_name, minilm_folder(), task.label_list(raw)
    )
    task.prepare_model(model, tokenizer)
    for module in model.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.0
    model.train()
    register_packed_attention()
    batches = random_batches(args, task, raw, tokenizer, model.config.label2id)
    layouts = {"padded": PaddedLayout()}
    for budget in (256, 512, 1024):
        layouts[f"sorted, {budget} tokens"] = SortedLayout(budget, tokenizer.pad_token_id)
    if task.token_level_labels:
        layouts["packed"] = PackedLayout(0)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-12)
    seconds = {name: [] for name in [*layouts, "AdamW step + clipping"]}
    real = sum(int(b["attention_mask"].sum()) for b in batches)
    computed = dict.fromkeys(layouts, 0)
    for round_index in range(2):  # the first round warms up; the second is measured
        for batch in batches:
            for name, layout in layouts.items():
                arranged = layout.arrange([batch])
                model.set_attn_implementation(PACKED_ATTENTION if name == "packed" else "sdpa")
                elapsed = forward_backward_seconds(model, arranged)
                started = time.perf_counter()
                torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
                optimizer.step()
                optimizer.zero_grad()
                update = time.perf_counter() - started
                if round_index:
                    seconds[name].append(elapsed)
                    seconds["AdamW step + clipping"].append(update)
                    computed[name] += sum(b["input_ids"].numel() for b in arranged)
    medians = {name: statistics.median(values) for name, values in seconds.items()}
    update = medians["AdamW step + clipping"]
    lines = [
        f"Command: `python bench/step_breakdown.py {' '.join(sys.argv[1:])}`\n",
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads. MiniLM (22.7M parameters), {args.batches} random "
        f"batches of {args.batch_size} {args.task.upper()} training examples, dropout off; "
        "medians.\n",
        "| layout | real / computed tokens | forward+backward (s) | speed-up | whole step "
        "with AdamW (s) | step speed-up |",
        "|---|---|---|---|---|---|",
    ]
    base = medians["padded"]
    for name in layouts:
        lines.append(
            f"| {name} | {real / computed[name]:.3f} | {medians[name]:.3f} | "
            f"{base / medians[name]:.2f}x | {medians[name] + update:.3f} | "
            f"{(base + update) / (medians[name] + update):.2f}x |"
        )
    lines.append(f"\nAdamW step + clipping: {update:.3f} s per step, the same for every layout.")
    text = "\n".join(lines)
    print(text)
    with open(args.output + ".md", "w", encoding="utf-8") as handle:
        handle.write(text + "\n")
    with open(args.output + ".json", "w", encoding="utf-8") as handle:
        json.dump({"argv": sys.argv[1:], "medians": medians, "computed": computed,
                   "real": real}, handle, indent=2)  # fmt: skip


if __name__ == "__main__":
    main()
