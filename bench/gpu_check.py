"""The Python half of bench/gpu_check.sh.

  python bench/gpu_check.py demo-data FOLDER       # the smoke mode's small NER and RE files
  python bench/gpu_check.py report RUNS_TSV OUTDIR  # the table, after loading each model

RUNS_TSV, one line per run: task, setup, status, wall seconds, results JSON, model folder, log.
MFU = 6 x parameters x real tokens/s / the GPU's peak dense bf16 FLOP/s (GPU_CHECK_PEAK_TFLOPS
overrides the peak found from the GPU's name)."""

from __future__ import annotations

import json
import os
import platform
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SENTENCES = {
    "ner": "Germline mutations in BRCA1 predispose women to breast cancer and ovarian cancer .",
    "re": "The <e1>company</e1> fabricates plastic <e2>chairs</e2> .",
}
PIPELINES = {"ner": "token-classification", "re": "text-classification"}
# Dense bf16 peaks (TFLOP/s), first match in the device name wins.
PEAK_TFLOPS = (("H100 PCIe", 756), ("H100 NVL", 835), ("H100", 989), ("H200", 989), ("A100", 312))
HF_SETUP = "transformers Trainer"
# What all_results.json's distributed_type must say of each setup (DDP on a CPU: MULTI_CPU).
EXPECTED_TYPES = {
    "DDP": ("MULTI_GPU", "MULTI_CPU"), "FSDP2": ("FSDP",), "DeepSpeed ZeRO-3": ("DEEPSPEED",)
}  # fmt: skip
COLUMNS = (
    "task", "setup", "status", "distributed type", "steps", "train tokens/s",
    "vs transformers Trainer", "MFU", "eval F1", "pipeline loaded", "pipeline output", "wall (s)",
)  # fmt: skip


def demo_data(folder: str) -> None:
    """Small NER files named as bench/common.py reads them, and RE files in JSON lines."""
    from accel_trainer.tasks.demo import demo_corpus, write_conll, write_demo_re_corpus

    os.makedirs(os.path.join(folder, "ner"), exist_ok=True)
    write_conll(os.path.join(folder, "ner", "train.tsv"), demo_corpus(200, seed=1))
    write_conll(os.path.join(folder, "ner", "devel.tsv"), demo_corpus(50, seed=2))
    write_demo_re_corpus(os.path.join(folder, "re"), num_train=200, num_dev=50)


def one_line(error: BaseException | str) -> str:
    return " ".join(str(error).split())[:300]


def device_and_peak() -> tuple[str, float | None]:
    """The GPU's name (or "CPU") and its peak dense bf16 FLOP/s where known."""
    import torch

    if not torch.cuda.is_available():
        name, peak = "CPU", None
    else:
        name = torch.cuda.get_device_name(0)
        peak = next((tflops for key, tflops in PEAK_TFLOPS if key in name), None)
    override = os.environ.get("GPU_CHECK_PEAK_TFLOPS")
    peak = float(override) if override else peak
    return name, peak * 1e12 if peak else None


def try_pipeline(task: str, folder: str) -> tuple[str, str]:
    """(loaded: yes/no, the prediction on one sentence or the error)."""
    import torch
    from transformers import pipeline

    device = 0 if torch.cuda.is_available() else -1
    options = {"aggregation_strategy": "first"} if task == "ner" else {}
    try:
        pipe = pipeline(PIPELINES[task], model=folder, device=device, **options)
    except Exception as error:  # any failure to load is the finding
        return "no", one_line(error)
    try:
        found = pipe(SENTENCES[task])
    except Exception as error:
        return "yes", "failed on one sentence: " + one_line(error)
    if task == "re":
        return "yes", f"{found[0]['label']} ({found[0]['score']:.2f})"
    return "yes", ", ".join(f"{e['word']}/{e['entity_group']}" for e in found) or "no entity"


def log_error(path: str) -> str:
    """The last line of a failed run's log that names an error, else its last line."""
    with open(path, encoding="utf-8", errors="replace") as handle:
        lines = [line.strip() for line in handle if line.strip()]
    launcher = ("CalledProcessError", "ChildFailedError")  # the launchers' own, saying no more
    lines = [line for line in lines if not any(name in line for name in launcher)]
    errors = [line for line in lines if re.search(r"(Error|Exception)\b|error:", line)]
    return one_line((errors or lines or ["empty log"])[-1])


def read_runs(path: str) -> list[dict]:
    runs = []
    with open(path, encoding="utf-8") as handle:
        for line in handle:
            task, setup, status, wall, results, folder, log = line.rstrip("\n").split("\t")
            run = {"task": task, "setup": setup, "status": status, "wall_s": float(wall)}
            run["results"], run["folder"] = {}, folder
            if status == "ok":
                with open(results, encoding="utf-8") as results_file:
                    run["results"] = json.load(results_file)
            elif log != "-":
                run["status"] += ": " + log_error(log)
            runs.append(run)
    return runs


def fill(run: dict, peak: float | None, hf_tokens: dict[str, float]) -> dict:
    """The table's cells of one run."""
    values = run["results"]
    tokens = values.get("train_tokens_per_second")
    parameters = values.get("total_parameters") or values.get("parameters")
    row = {
        "task": run["task"],
        "setup": run["setup"],
        "status": run["status"],
        "distributed type": values.get("distributed_type", "-"),
        "steps": values.get("optimizer_steps", "-"),
        "train tokens/s": f"{tokens:.0f}" if tokens else "-",
        "vs transformers Trainer": "-",
        "MFU": f"{6 * parameters * tokens / peak:.4f}" if tokens and parameters and peak else "-",
        "eval F1": f"{values['eval_f1']:.4f}" if "eval_f1" in values else "-",
        "pipeline loaded": "-",
        "pipeline output": "-",
        "wall (s)": f"{run['wall_s']:.0f}",
    }
    found = values.get("distributed_type")
    if found and found not in EXPECTED_TYPES.get(run["setup"], (found,)):
        row["status"] = f"wrong setup: ran as {found}"
    if values.get("sharding") not in (None, "none"):
        row["distributed type"] += f" ({values['sharding']})"
    if tokens and hf_tokens.get(run["task"]):
        row["vs transformers Trainer"] = f"{tokens / hf_tokens[run['task']]:.2f}x"
    if run["status"] == "ok" and run["setup"] != HF_SETUP:
        row["pipeline loaded"], row["pipeline output"] = try_pipeline(run["task"], run["folder"])
    return row


def versions() -> str:
    from importlib.metadata import PackageNotFoundError, version

    found = []
    for name in ("torch", "transformers", "accelerate", "datasets", "pyarrow", "deepspeed", "peft"):
        try:
            found.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            found.append(f"{name} absent")
    return ", ".join(found)


def report(runs_tsv: str, out: str) -> int:
    """Write OUT/gpu_check.md and .json; exit status 1 when a run failed."""
    runs = read_runs(runs_tsv)
    device, peak = device_and_peak()
    hf_tokens = {
        run["task"]: run["results"].get("train_tokens_per_second")
        for run in runs
        if run["setup"] == HF_SETUP and run["status"] == "ok"
    }
    rows = [fill(run, peak, hf_tokens) for run in runs]
    peak_text = f"{peak / 1e12:.0f} TFLOP/s" if peak else "unknown (MFU not computed)"
    lines = [
        f"Device: {device}; peak dense bf16: {peak_text}. Python {platform.python_version()}, "
        f"{versions()}. MFU = 6 x parameters x real tokens/s / peak.",
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    for row in rows:
        cells = (str(row[column]).replace("|", "\\|") for column in COLUMNS)
        lines.append("| " + " | ".join(cells) + " |")
    text = "\n".join(lines) + "\n"
    print(text)
    with open(os.path.join(out, "gpu_check.md"), "w", encoding="utf-8") as handle:
        handle.write(text)
    raw = {"device": device, "peak_flops": peak, "versions": versions(), "rows": rows, "runs": runs}
    with open(os.path.join(out, "gpu_check.json"), "w", encoding="utf-8") as handle:
        json.dump(raw, handle, indent=2)
    failed = [row for row in rows if not row["status"].startswith(("ok", "skipped"))]
    failed += [row for row in rows if row["pipeline loaded"] == "no"]
    failed += [row for row in rows if row["pipeline output"].startswith("failed")]
    return 1 if failed else 0


def main() -> int:
    command, *args = sys.argv[1:]
    if command == "demo-data":
        demo_data(*args)
        return 0
    return report(*args)


if __name__ == "__main__":
    sys.exit(main())
