"""The loop a user would write by hand: PyTorch only (no Accelerate, no Trainer), the same data,
model and hyperparameters as the other contenders. Its order is the one accel-trainer draws by
default (a permutation seeded by seed + epoch), so those two see the same batches."""

import argparse
import contextlib
import math
import time

import torch
from common import add_arguments, dev_f1, device_for, peak_gpu_memory_mb, prepare, write_results
from torch.utils.data import DataLoader, Sampler
from transformers import DataCollatorForTokenClassification, get_linear_schedule_with_warmup


class EpochPermutation(Sampler[int]):
    """A permutation per epoch, seeded by seed + epoch."""

    def __init__(self, size: int, seed: int):
        self.size, self.seed, self.epoch = size, seed, 0

    def __len__(self) -> int:
        return self.size

    def __iter__(self):
        generator = torch.Generator().manual_seed(self.seed + self.epoch)
        yield from torch.randperm(self.size, generator=generator).tolist()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    add_arguments(parser)
    parser.add_argument("--fused_adamw", action="store_true", help="torch's fused AdamW kernel")
    args = parser.parse_args()
    torch.manual_seed(args.seed)
    task, model, tokenizer, train, dev = prepare(args)
    device = device_for(args)
    model.to(device)
    sampler = EpochPermutation(len(train), args.seed)
    loader = DataLoader(
        train.select_columns(["input_ids", "attention_mask", "token_type_ids", "labels"]),
        batch_size=args.batch_size,
        sampler=sampler,
        collate_fn=DataCollatorForTokenClassification(tokenizer, label_pad_token_id=-100),
        pin_memory=device.type == "cuda",
    )
    max_steps = args.max_steps or args.epochs * math.ceil(len(train) / args.batch_size)
    no_decay = [p for n, p in model.named_parameters() if n.endswith("bias") or "LayerNorm" in n]
    decay = [p for n, p in model.named_parameters() if not (n.endswith("bias") or "LayerNorm" in n)]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.01}, {"params": no_decay, "weight_decay": 0.0}],
        lr=args.learning_rate,
        fused=args.fused_adamw or None,
    )
    scheduler = get_linear_schedule_with_warmup(optimizer, 0, max_steps)
    autocast = (
        torch.autocast("cuda", dtype=torch.bfloat16) if args.bf16 else contextlib.nullcontext()
    )
    model.train()
    step, losses, samples, real_tokens = 0, [], 0, 0
    start = time.perf_counter()
    while step < max_steps:
        for batch in loader:
            batch = {key: value.to(device, non_blocking=True) for key, value in batch.items()}
            with autocast:
                loss = model(**batch).loss
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            optimizer.zero_grad()
            losses.append(loss.detach())
            samples += batch["input_ids"].shape[0]
            real_tokens += batch["attention_mask"].sum()
            step += 1
            if step == max_steps:
                break
        sampler.epoch += 1
    real_tokens = int(real_tokens)  # one synchronisation with the GPU, at the end
    runtime = time.perf_counter() - start
    write_results(
        args.results,
        train_runtime=runtime,
        train_samples_per_second=samples / runtime,
        train_tokens_per_second=real_tokens / runtime,
        train_loss=float(torch.stack(losses).mean()),
        eval_f1=dev_f1(task, model, tokenizer, dev),
        parameters=sum(p.numel() for p in model.parameters()),
        peak_gpu_memory_mb=peak_gpu_memory_mb(),
    )


if __name__ == "__main__":
    main()
