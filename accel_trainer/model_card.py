"""The output folder's README.md: a Hugging Face model card (huggingface_hub's card tools) that
says what the model is, what it was trained on, how, and how well it did."""

from __future__ import annotations

import os
import platform
import shlex
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import TYPE_CHECKING

from accel_trainer.config import TINY_BERT, TrainConfig

if TYPE_CHECKING:
    from accel_trainer.tasks.base import Task

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


def base_model_of(config: TrainConfig) -> str | None:
    """The hub id to name as base_model in the card's metadata; None for local folders and
    tiny-bert, which have no hub page to link."""
    name = config.model_name_or_path
    if name == TINY_BERT or os.path.exists(name):
        return None
    return name


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


def usage_lines(task: Task, results: dict, labels: list[str]) -> list[str]:
    lora = results.get("peft") or {}
    if lora.get("saved") != "adapter":
        return [
            "from transformers import pipeline",
            "",
            f'model = pipeline("{task.pipeline_tag}", model="PATH/TO/THIS/FOLDER")',
        ]
    return [
        "from peft import PeftModel",
        f"from transformers import {task.auto_model_class_name}, AutoTokenizer",
        "",
        'tokenizer = AutoTokenizer.from_pretrained("PATH/TO/THIS/FOLDER")',
        f"base = {task.auto_model_class_name}.from_pretrained(",
        f'    "{lora["base_model"]}", num_labels={len(labels)}',
        ")",
        "base.resize_token_embeddings(len(tokenizer))",
        'model = PeftModel.from_pretrained(base, "PATH/TO/THIS/FOLDER").merge_and_unload()',
    ]


def model_card_text(
    config: TrainConfig,
    task: Task,
    results: dict,
    labels: list[str],
    data_files: dict[str, str | None],
) -> str:
    from huggingface_hub import ModelCardData

    metrics = {k: v for k, v in results.items() if k.startswith("eval_")}
    card_data = ModelCardData(
        base_model=base_model_of(config),
        library_name="peft"
        if (results.get("peft") or {}).get("saved") == "adapter"
        else ("transformers"),
        pipeline_tag=task.pipeline_tag,
        tags=["accel_trainer", task.name],
    )
    base = config.model_name_or_path
    if base == TINY_BERT:
        base += " (a small BERT, randomly initialised, with a WordPiece vocabulary of the data)"
    options = config.to_dict()
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
        f"{results.get('train_samples', '?')} training examples, "
        f"{results.get('eval_samples', '?')} evaluation examples.",
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
        "| option | value |",
        "|---|---|",
        *[f"| {k} | {v} |" for k, v in options.items() if v is not None],
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
        *usage_lines(task, results, labels),
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
) -> str:
    """Write OUTPUT_DIR/README.md; return its path."""
    from huggingface_hub import ModelCard

    path = os.path.join(output_dir, "README.md")
    ModelCard(model_card_text(config, task, results, labels, data_files)).save(path)
    return path
