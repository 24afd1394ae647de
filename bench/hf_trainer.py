"""transformers' Trainer on the same data, model and hyperparameters, with its defaults (or its
own --group_by_length)."""

import argparse
import tempfile

from common import add_arguments, dev_f1, peak_gpu_memory_mb, prepare, write_results
from transformers import DataCollatorForTokenClassification, Trainer, TrainingArguments


class CountingCollator(DataCollatorForTokenClassification):
    """Counts the real (non-pad) tokens of every batch it builds for training."""

    real_tokens = 0

    def __call__(self, features, return_tensors=None):
        batch = super().__call__(features, return_tensors)
        CountingCollator.real_tokens += int(batch["attention_mask"].sum())
        return batch


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    task, model, tokenizer, train, dev = prepare(args)
    with tempfile.TemporaryDirectory() as output_dir:
        training_args = TrainingArguments(
            output_dir=output_dir,
            max_steps=args.max_steps or -1,
            num_train_epochs=args.epochs,
            per_device_train_batch_size=args.batch_size,
            learning_rate=args.learning_rate,
            weight_decay=0.01,
            lr_scheduler_type="linear",
            seed=args.seed,
            # transformers v5 name of group_by_length=True
            train_sampling_strategy="group_by_length" if args.group_by_length else "random",
            logging_steps=args.max_steps or 500,
            save_strategy="no",
            eval_strategy="no",
            report_to=[],
            use_cpu=not args.bf16,
            bf16=args.bf16,
            disable_tqdm=True,
        )
        trainer = Trainer(
            model=model,
            args=training_args,
            train_dataset=train.select_columns(
                ["input_ids", "attention_mask", "token_type_ids", "labels"]
            ),
            data_collator=CountingCollator(tokenizer, label_pad_token_id=-100),
        )
        metrics = trainer.train().metrics
    runtime = metrics["train_runtime"]
    write_results(
        args.results,
        train_runtime=runtime,
        train_samples_per_second=metrics["train_samples_per_second"],
        train_tokens_per_second=CountingCollator.real_tokens / runtime,
        train_loss=metrics["train_loss"],
        eval_f1=dev_f1(task, model, tokenizer, dev),
        parameters=sum(p.numel() for p in model.parameters()),
        peak_gpu_memory_mb=peak_gpu_memory_mb(),
    )


if __name__ == "__main__":
    main()
