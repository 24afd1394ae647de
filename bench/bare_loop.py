"""The loop a user would write by hand: PyTorch only (no Accelerate, no Trainer), the same data,
model and hyperparameters as the other contenders."""

import argparse
import time

import torch
from common import add_arguments, dev_f1, prepare, write_results
from torch.utils.data import DataLoader
from transformers import DataCollatorForTokenClassification, get_linear_schedule_with_warmup


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    task, model, tokenizer, train, dev = prepare(args)
    loader = DataLoader(
        train.select_columns(["input_ids", "attention_mask", "token_type_ids", "labels"]),
        batch_size=args.batch_size,
        shuffle=True,
        generator=torch.Generator().manual_seed(args.seed),
        collate_fn=DataCollatorForTokenClassification(tokenizer, label_pad_token_id=-100),
    )
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, args.max_steps)
    model.train()
    step, losses, samples, real_tokens = 0, [], 0, 0
    start = time.perf_counter()
    while step < args.max_steps:
        for batch in loader:
            loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.item())
            samples += batch["input_ids"].shape[0]
            real_tokens += int(batch["attention_mask"].sum())
            step += 1
            if step == args.max_steps:
                break
    runtime = time.perf_counter() - start
    write_results(
        args.results,
        train_runtime=runtime,
        train_samples_per_second=samples / runtime,
        train_tokens_per_second=real_tokens / runtime,
        train_loss=sum(losses) / len(losses),
        eval_f1=dev_f1(task, model, tokenizer, dev),
    )


if __name__ == "__main__":
    main()
