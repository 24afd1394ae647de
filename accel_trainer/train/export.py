"""The final model folder, committed atomically: weights, tokenizer, the `accel_trainer` entry
of config.json, the options, the results and the model card, so that `from_pretrained`,
`pipeline`, `accel-trainer evaluate` and `predict` all load it."""

from __future__ import annotations

import copy
import json
import os
from typing import TYPE_CHECKING

from accelerate import Accelerator

from accel_trainer.errors import OutputError
from accel_trainer.lora import (
    base_weights,
    is_peft_model,
    lora_summary,
    merged_copy,
    whole_numel,
)
from accel_trainer.model_card import write_model_card
from accel_trainer.models import vocabulary_digest
from accel_trainer.runtime import raise_if_any_failed
from accel_trainer.storage.commit import commit_final_model
from accel_trainer.storage.output_folder import OPTIONS_FILE

if TYPE_CHECKING:
    from accel_trainer.config import TrainConfig
    from accel_trainer.tasks.base import Task

RESULTS_FILE = "all_results.json"


def data_sources(config: TrainConfig) -> dict[str, str | None]:
    """Where the training and evaluation data came from, for the model card."""
    if config.data.dataset_name is not None:
        name = " ".join(filter(None, [config.data.dataset_name, config.data.dataset_config_name]))
        return {"train and eval": name}
    return {"train": config.data.train_file, "eval": config.data.validation_file}


def task_entry(task: Task, tokenizer) -> dict:
    """The `accel_trainer` entry of config.json: the task's settings and the tokenizer that
    evaluate and predict must find beside the weights."""
    return {
        **task.settings(),
        "tokenizer_size": len(tokenizer),
        "tokenizer_vocab": vocabulary_digest(tokenizer),
    }


def save_final_model(
    accelerator: Accelerator,
    model,
    tokenizer,
    task: Task,
    config: TrainConfig,
    output_dir: str,
    results: dict | None,
    step: int,
    data_files: dict[str, str | None],
    run_values: dict | None = None,
) -> None:
    """Save the full, unwrapped model (safetensors) with everything that describes it, from the
    main process, as one atomic commit: a failed save leaves the previous model whole.
    `run_values`: options as the launched run settled them, for the model card."""
    accelerator.wait_for_everyone()
    # Every process takes part: under FSDP/DeepSpeed this gathers the sharded weights.
    state_dict = accelerator.get_state_dict(model)
    failure = None
    if accelerator.is_main_process:
        unwrapped = accelerator.unwrap_model(model)
        save_weights = weights_writer(accelerator, unwrapped, state_dict, config, task, tokenizer)
        config_json = unwrapped.config
        labels = [config_json.id2label[i] for i in sorted(config_json.id2label)]

        def write(folder: str) -> None:
            save_weights(folder)
            tokenizer.save_pretrained(folder)
            options = {**config.effective_options(), "output_dir": output_dir}
            write_json(os.path.join(folder, OPTIONS_FILE), options)
            if results is not None:
                write_json(os.path.join(folder, RESULTS_FILE), results)
                write_model_card(folder, config, task, results, labels, data_files, run_values)

        weights = sum(whole_numel(p) * p.element_size() for p in unwrapped.parameters())
        try:
            commit_final_model(output_dir, write, step, estimate=weights)
        except OutputError as error:
            failure = str(error)
    raise_if_any_failed(accelerator, failure, output_dir)


def weights_writer(accelerator: Accelerator, model, state_dict, config, task, tokenizer):
    """What writes the weights and config.json into a folder: the model's own, or for a peft
    model its adapters merged into plain weights (a copy, loadable without peft), or with
    --save_adapter_only the adapter and the trained model's config.json."""
    entry = task_entry(task, tokenizer)
    if not is_peft_model(model):
        model.config.accel_trainer = entry

        # transformers' ZeRO-3 loading records BERT's legacy gamma/beta names, which its
        # save would write back: the folder keeps the names the model has, as without sharding.
        original_names = accelerator.distributed_type.value != "DEEPSPEED"

        def write_model(folder: str) -> None:
            model.save_pretrained(
                folder, state_dict=state_dict, save_function=accelerator.save,
                save_original_format=original_names,
            )  # fmt: skip

        return write_model
    adapter_only = config.peft.save_adapter_only
    entry["peft"] = lora_summary(model, "adapter" if adapter_only else "merged")
    if not adapter_only:
        merged = merged_copy(model, state_dict)
        merged.config.accel_trainer = entry

        def write_merged(folder: str) -> None:
            merged.save_pretrained(folder, save_function=accelerator.save)

        return write_merged
    entry["peft"]["base_weights"] = base_weights(entry["peft"]["base_model"])
    trained_config = copy.deepcopy(model.get_base_model().config)
    trained_config.accel_trainer = entry

    def write_adapter(folder: str) -> None:
        # The head and the trained token rows go into the adapter file (peft's modules_to_save
        # and trainable tokens); config.json keeps the labels and this entry for evaluate.
        model.save_pretrained(folder, state_dict=state_dict, save_embedding_layers=False)
        trained_config.save_pretrained(folder)

    return write_adapter


def write_json(path: str, value: dict) -> None:
    with open(path, "w", encoding="utf-8") as handle:
        json.dump(value, handle, indent=2)


def run_values(
    accelerator: Accelerator, accumulation_steps: int, layout, batch_layout: str
) -> dict:
    """Options as this launch settled them, where the configured value leaves it open."""
    values = {
        "mixed_precision": accelerator.mixed_precision,
        "gradient_accumulation_steps": accumulation_steps,
        "batch_layout": layout.name,
    }
    if batch_layout == "auto":
        values["batch_layout"] += " (auto)"
    budget = getattr(layout, "token_budget", None)  # the sorted layout's
    if budget is not None:
        values["micro_batch_tokens"] = budget
    return values
