"""The output folder's README.md: a Hugging Face model card (huggingface_hub's card tools) that
says what the model is, what it was trained on, how, and how well it did."""

from __future__ import annotations

import json
import os
import platform
import re
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from accel_trainer.config import TINY_BERT, TrainConfig
from accel_trainer.errors import InputError
from accel_trainer.tasks.demo import settled_options
from accel_trainer.tasks.wording import example_word, usage_code

if TYPE_CHECKING:
    from accel_trainer.tasks.base import Task

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]{0,95}(/[A-Za-z0-9][\w.-]{0,95})?")  # hub repository names
LIBRARIES = ("accel_trainer", "torch", "transformers", "accelerate", "datasets", "tokenizers")


def library_versions() -> dict[str, str]:
    found = {"python": platform.python_version()}
    for name in LIBRARIES:
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            found[name] = "not installed"
    return found


def command_line(config: TrainConfig) -> str:
    """The command as the user typed it (set by the CLI), else this process's arguments."""
    return getattr(config, "command_line", None) or shlex.join(sys.argv)


def data_rows(data_files: dict[str, str | None]) -> list[str]:
    rows = []
    for role, path in data_files.items():
        if path is None:
            continue
        size = f"{os.path.getsize(path):,} bytes" if os.path.isfile(path) else "dataset"
        rows.append(f"| {role} | `{path}` | {size} |")
    return rows


def usage_example(task: Task, data_files: dict, config: TrainConfig) -> dict | None:
    """A short example of the run's own evaluation file for the card's usage code (the first of
    at most 200 characters among its first 50); None without one."""
    path = data_files.get("eval") or data_files.get("eval (demo corpus)")
    if not path:
        return None
    try:
        examples = task.read(path, "--validation_file", config.data.data_format)
    except (OSError, InputError):
        return None
    for example in examples.select(range(min(50, len(examples)))):
        text = example.get("text") or " ".join(example.get("tokens") or [])
        if text and len(text) <= 200:
            return example
    return None


def declared_hub_id(folder: str) -> str | None:
    """The hub id a local model folder's config.json says it was made from (_name_or_path), if
    it names one rather than a local path."""
    try:
        with open(os.path.join(folder, "config.json"), encoding="utf-8") as handle:
            name = json.load(handle).get("_name_or_path")
    except (OSError, ValueError, AttributeError):
        return None
    if not isinstance(name, str) or not HUB_ID.fullmatch(name) or os.path.exists(name):
        return None
    return name


def base_model_of(config: TrainConfig) -> str | None:
    """The base_model of the card's metadata: the hub id; for a local folder the hub id its
    config.json names (or of the hub's cache it lies in), else the folder's own name; None for
    tiny-bert, which starts from scratch."""
    name = config.model_name_or_path
    if name == TINY_BERT:
        return None
    if not os.path.exists(name):
        return name
    parts = os.path.normpath(os.path.abspath(name)).split(os.sep)
    # The hub's cache: .../models--ORG--NAME/snapshots/REVISION
    if len(parts) >= 3 and parts[-2] == "snapshots" and parts[-3].startswith("models--"):
        return parts[-3].removeprefix("models--").replace("--", "/")
    return declared_hub_id(name) or parts[-1]


def local_base(folder: str) -> str:
    """How the card's text names a local base folder: its path, and the hub id its config.json
    names (the model it was made from, which may be an older one than what it holds)."""
    folder = os.path.abspath(folder)
    declared = declared_hub_id(folder)
    origin = f", whose config.json names `{declared}` as its origin" if declared else ""
    return f"the local folder `{folder}`{origin}"


def shown(value) -> str:
    """An option's value in a Markdown table cell."""
    if value is None:
        text = "none"
    elif isinstance(value, list):
        text = ", ".join(str(item) for item in value)
    else:
        text = str(value)
    return text.replace("|", "\\|")


def card_options(config: TrainConfig, task: Task, labels: list[str]) -> dict:
    """Every option of the run (its task's only) as it shaped the model: defaults resolved
    (learning rate, output folder, label list, what the task settled)."""
    options = {**config.effective_options(), **settled_options(task)}
    if options.get("label_names") is None:
        options["label_names"] = labels
    return options


def parameter_lines(results: dict) -> list[str]:
    """What trained: every weight, or LoRA's adapters (and what the folder holds then)."""
    trainable, total = results.get("trainable_parameters"), results.get("total_parameters")
    if not trainable or not total:
        return []
    counted = f"{trainable:,} of {total:,} parameters trained ({trainable / total:.2%})"
    lora = results.get("peft")
    if lora is None:
        return [f"All weights fine-tuned: {counted}." if trainable == total else f"{counted}.", ""]
    tokens = len(lora.get("trained_token_ids") or [])
    held = (
        "This folder holds the adapter only (adapter_config.json, adapter_model.safetensors): "
        f"loading it needs peft and the base model `{lora['base_model']}`."
        if lora.get("saved") == "adapter"
        else "This folder holds the adapters merged into plain weights: it loads without peft."
    )
    return [
        f"LoRA (peft): rank {lora['r']}, alpha {lora['alpha']}, dropout {lora['dropout']} on "
        f"{', '.join(f'`{name}`' for name in lora['target_modules'])}; trained in full: "
        f"{', '.join(f'`{name}`' for name in lora['trained_in_full']) or 'no head'} and {tokens} "
        f"new token embedding(s); {counted}. {held}",
        "",
    ]


def usage_lines(
    task: Task, results: dict, labels: list[str], folder: str, example: dict | None = None
) -> list[str]:
    """Code that loads the model from `folder` (this card's, by its absolute path: the code
    runs as written) and labels `example`."""
    lora = results.get("peft") or {}
    if lora.get("saved") != "adapter":
        return [usage_code(task, folder, example).rstrip("\n")]
    return [
        "from peft import PeftModel",
        f"from transformers import {task.auto_model_class_name}, AutoTokenizer",
        "",
        f"tokenizer = AutoTokenizer.from_pretrained({json.dumps(folder)})",
        f"labels = {json.dumps(labels, ensure_ascii=False)}",
        f"base = {task.auto_model_class_name}.from_pretrained(",
        f'    "{lora["base_model"]}",',
        "    id2label=dict(enumerate(labels)),",
        "    label2id={label: i for i, label in enumerate(labels)},",
        "    ignore_mismatched_sizes=True,",
        ")",
        "base.resize_token_embeddings(len(tokenizer))",
        f"model = PeftModel.from_pretrained(base, {json.dumps(folder)}).merge_and_unload()",
    ]


def model_card_text(
    config: TrainConfig,
    task: Task,
    results: dict,
    labels: list[str],
    data_files: dict[str, str | None],
    run_values: dict | None = None,
) -> str:
    """The card's text; `run_values`: options as the run settled them once launched (mixed
    precision, accumulation, batch layout), over their configured values."""
    from huggingface_hub import ModelCardData

    metrics = {k: v for k, v in results.items() if k.startswith("eval_")}
    base_model = base_model_of(config)
    card_data = ModelCardData(
        base_model=base_model,
        library_name="peft"
        if (results.get("peft") or {}).get("saved") == "adapter"
        else ("transformers"),
        pipeline_tag=task.pipeline_tag,
        tags=["accel_trainer", task.name],
    )
    if base_model is None:
        base = f"{TINY_BERT} (a small BERT, randomly initialised, with a WordPiece vocabulary "
        base += "of the data: no base model)"
    elif os.path.exists(config.model_name_or_path):
        base = local_base(config.model_name_or_path)
    else:
        base = base_model
    options = {**card_options(config, task, labels), **(run_values or {})}
    word = f"{example_word(task)}s"
    lines = [
        "---",
        card_data.to_yaml(),
        "---",
        "",
        f"# {os.path.basename(os.path.abspath(config.resolved_output_dir()))}",
        "",
        f"Fine-tuned with accel_trainer for {task.pipeline_tag} "
        f"(task `{task.name}`) from **{base}**, with {len(labels)} labels: "
        + ", ".join(f"`{label}`" for label in labels)
        + ".",
        "",
        "## Data",
        "",
        "| role | source | size |",
        "|---|---|---|",
        *data_rows(data_files),
        "",
        f"Trained on {results.get('train_samples', '?')} {word}, evaluated on "
        f"{results.get('eval_samples', '?')} {word}.",
        "",
        "## Evaluation (the final model)",
        "",
        "| metric | value |",
        "|---|---|",
        *[
            f"| {k} | {v:.4f} |" if isinstance(v, float) else f"| {k} | {v} |"
            for k, v in metrics.items()
        ],
        "",
        "## Training",
        "",
        f"{results.get('global_step')} optimizer steps, {results.get('epoch')} epochs, on "
        f"{results.get('num_processes')} process(es); {results.get('train_runtime')} s of "
        f"training, {results.get('train_tokens_per_second')} real tokens/s, padding efficiency "
        f"{results.get('train_padding_efficiency')}, final train loss "
        f"{results.get('train_loss', float('nan')):.4f}.",
        "",
        *parameter_lines(results),
        "Command:",
        "",
        "```bash",
        command_line(config),
        "```",
        "",
        "Every option, defaults included, with the value the run used:",
        "",
        "| option | value |",
        "|---|---|",
        *[f"| {name} | {shown(value)} |" for name, value in options.items()],
        "",
        "## Library versions",
        "",
        "| library | version |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in library_versions().items()],
        "",
        "## Usage",
        "",
        "```python",
        *usage_lines(
            task,
            results,
            labels,
            os.path.abspath(config.resolved_output_dir()),
            usage_example(task, data_files, config),
        ),  # fmt: skip
        "```",
        "",
    ]
    return "\n".join(lines)


def write_model_card(
    output_dir: str,
    config: TrainConfig,
    task: Task,
    results: dict,
    labels: list[str],
    data_files: dict[str, str | None],
    run_values: dict | None = None,
) -> str:
    """Write OUTPUT_DIR/README.md; return its path."""
    from huggingface_hub import ModelCard

    path = os.path.join(output_dir, "README.md")
    text = model_card_text(config, task, results, labels, data_files, run_values)
    ModelCard(text).save(path)
    return path
